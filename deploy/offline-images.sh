#!/usr/bin/env bash
# Builds every image the compose stack runs from Debian and PyPI packages alone, for a site
# where no image registry is reachable (and for CI here, which reaches none):
#
#   price-category/base:bookworm      Debian bookworm (debootstrap minbase) with Python 3.11
#   price-category/redis:bookworm     Redis, from Debian's package, on that base
#   price-category/postgres:15        PostgreSQL 15, from Debian's packages, on that base
#   price-category/nginx:bookworm     nginx, the gateway's front, from Debian's package
#   price-category:latest             the project, on that base; pip installs requirements.lock
#                                     from a wheelhouse this host's pip downloads
#   price-category/front:latest       that nginx with the gateway's server block (deploy/nginx)
#
# The wheelhouse is why no certificate goes into an image: the host's pip, with whatever
# certificate authorities and index it is set up with, downloads the locked wheels (their
# hashes checked) into wheelhouse/ in the build context, and the image installs them with
# --no-index. Debian's packages come from the host's own mirror (DEBIAN_MIRROR overrides it).
#
# Images already built are kept (a second run takes seconds); REBUILD=1 builds all again.
# The project's two images are built every time, from this checkout (cached layers make an
# unchanged one quick).
# Afterwards, compose uses them with:
#   BASE_IMAGE=price-category/base:bookworm REDIS_IMAGE=price-category/redis:bookworm \
#   POSTGRES_IMAGE=price-category/postgres:15 NGINX_IMAGE=price-category/nginx:bookworm \
#   docker-compose up -d
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=price-category/base:bookworm
PYTHON=${PYTHON:-python3.11}
REBUILD=${REBUILD:-0}

log() { printf '== %s\n' "$*" >&2; }

needs_build() {
  [ "$REBUILD" = 1 ] || ! docker image inspect "$1" >/dev/null 2>&1
}

# The first Debian mirror this host's apt uses (deb822 sources or the one-line format).
host_mirror() {
  {
    sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null
    sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | grep -v -- '-security' | grep -m 1 '/debian' || true
}

build_base() {
  local mirror="${DEBIAN_MIRROR:-$(host_mirror)}"
  [ -n "$mirror" ] || { echo "no Debian mirror found in /etc/apt: set DEBIAN_MIRROR" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "needs debootstrap: apt-get install debootstrap" >&2; exit 1; }
  local root
  root="$(mktemp -d)"
  # shellcheck disable=SC2064  # the folder is known now
  trap "rm -rf '$root'" RETURN
  log "debootstrap bookworm (minbase, python3) from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" >/dev/null
  # Smaller and quieter images: no package caches, no documentation, apt never asks.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/*
  log "docker import $BASE_IMAGE"
  tar -C "$root" -c . | docker import \
    --change 'ENV DEBIAN_FRONTEND=noninteractive' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE" >/dev/null
}

build_on_base() {
  local image="$1" folder="$2"
  log "docker build $image"
  docker build --quiet --force-rm --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$image" "$folder" >/dev/null
}

fill_wheelhouse() {
  log "wheelhouse: the wheels of requirements.lock, downloaded by this host's pip"
  local version needed
  version="$(docker run --rm "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())')"
  needed="$(mktemp)"
  "$PYTHON" deploy/wheelhouse.py requirements.lock "$version" > "$needed"
  mkdir -p wheelhouse
  "$PYTHON" -m pip download --quiet --no-deps --require-hashes -r "$needed" -d wheelhouse
  rm -f "$needed"
}

needs_build "$BASE_IMAGE" && build_base
needs_build price-category/redis:bookworm && build_on_base price-category/redis:bookworm deploy/images/redis
needs_build price-category/postgres:15 && build_on_base price-category/postgres:15 deploy/images/postgres
needs_build price-category/nginx:bookworm && build_on_base price-category/nginx:bookworm deploy/images/nginx
fill_wheelhouse
log "docker build price-category:latest"
previous="$(docker image inspect -f '{{.Id}}' price-category:latest 2>/dev/null || true)"
docker build --quiet --force-rm --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  --build-arg "GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t price-category:latest . >/dev/null
# The image this build replaced, unless a container still uses it: one app image, not one a build.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' price-category:latest)" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
log "docker build price-category/front:latest"
docker build --quiet --force-rm --build-arg "NGINX_IMAGE=price-category/nginx:bookworm" \
  -t price-category/front:latest deploy/nginx >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^price-category' >&2
