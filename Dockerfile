# Petrel in a container: `docker build -t petrel .`
#
#   docker volume create petrel
#   docker run --rm -v petrel:/var/lib/petrel petrel init --hostname mail.example.org --data-dir /var/lib/petrel
#   docker run -d --name petrel -v petrel:/var/lib/petrel \
#     -p 25:25 -p 465:465 -p 587:587 -p 143:143 -p 993:993 -p 110:110 -p 995:995 -p 80:80 -p 443:443 petrel
#   docker exec petrel cat /var/lib/petrel/admin-password
#
# Not built in CI (its machines have no Docker engine); the same steps are
# what `cargo xtask setup` and `cargo build --release` do on Debian 12.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb-dev libclang-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin petrel

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb7.8 libsqlite3-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/petrel --shell /usr/sbin/nologin petrel \
 && mkdir -p /var/lib/petrel && chown petrel:petrel /var/lib/petrel
COPY --from=build /src/target/release/petrel /usr/local/bin/petrel
USER petrel
VOLUME /var/lib/petrel
# SMTP, submissions, submission, IMAP, IMAPS, POP3, POP3S, HTTP (redirect), HTTPS.
EXPOSE 25 465 587 143 993 110 995 80 443
# Logs go to standard error (docker logs); /readyz on the https listener
# tells an orchestrator when the server takes mail.
ENTRYPOINT ["petrel"]
CMD ["serve", "--data-dir", "/var/lib/petrel"]
