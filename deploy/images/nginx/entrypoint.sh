#!/bin/sh
# The official image's template step: only the variables set in the environment are replaced,
# so nginx's own $variables in a template survive.
set -eu
for template in /etc/nginx/templates/*.template; do
  [ -e "$template" ] || continue
  names="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')"
  output="/etc/nginx/conf.d/$(basename "$template" .template)"
  envsubst "$names" < "$template" > "$output"
done
exec "$@"
