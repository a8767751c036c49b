# syntax=docker/dockerfile:1
# Tessera: build with the same commands CI runs, ship production dependencies only, run as non-root.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace packages (@tessera/verifier, @tessera/client): npm ci links them into node_modules.
COPY packages/verifier/package.json ./packages/verifier/
COPY packages/client/package.json ./packages/client/
# `npm ci` also runs the package's prepare script (tsc); sources are not there yet, so skip it here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json eslint.config.js jest.config.js ./
COPY src ./src
COPY packages ./packages
COPY bin ./bin
COPY config ./config
COPY migrations ./migrations
RUN npm run typecheck && npm run lint && npm run build

FROM node:24-bookworm-slim AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/verifier/package.json ./packages/verifier/
COPY packages/client/package.json ./packages/client/
# argon2 ships an N-API prebuild for linux-x64/arm64 glibc: no compiler and no install scripts needed.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080 \
    TESSERA_DATA_DIR=/var/lib/tessera/db
WORKDIR /app
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# node_modules/@tessera/* link here: the CLI imports @tessera/client, the demo @tessera/verifier.
COPY --from=build /app/packages/verifier/package.json ./packages/verifier/
COPY --from=build /app/packages/verifier/dist ./packages/verifier/dist
COPY --from=build /app/packages/client/package.json ./packages/client/
COPY --from=build /app/packages/client/dist ./packages/client/dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY migrations ./migrations
RUN mkdir -p /var/lib/tessera && chown node:node /var/lib/tessera \
 && ln -s /app/bin/tessera.js /usr/local/bin/tessera
USER node
VOLUME ["/var/lib/tessera"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
