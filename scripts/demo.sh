#!/usr/bin/env bash
# make demo: a whole prediction on this machine, end to end.
#   1. build scv-hpc and the demo model (faces: pigo's pretrained face detector)
#   2. serve a loopback OCI registry (Debian's docker-registry) on 127.0.0.1:5055
#   3. pack the model into an OCI image with scv-hpc's own code and push it there
#   4. scv-hpc predict faces over real sample images (builtin runtime: no Apptainer needed)
#   5. show the cache entry (cache ls, inspect), collect the results into demo-out/results.jsonl and print faces per image
#   6. write the HTML report demo-out/report.html
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.cache/demo-registry
port=5055 # the embedded catalog's faces image is at localhost:5055
cache=$root/.cache/demo-cache
out=$root/demo-out
bin=$root/bin

trap 'scripts/registry-down.sh "$state"' EXIT

echo "==> building scv-hpc and the faces model"
make -s build
CGO_ENABLED=0 go build -trimpath -o "$bin/faces" ./examples/models/faces
cascade="$(go list -m -f '{{.Dir}}' github.com/esimov/pigo)/cascade/facefinder"

echo "==> starting a loopback registry on 127.0.0.1:$port"
scripts/registry-up.sh "$state" "$port"

echo "==> packing the model into an OCI image and pushing it"
"$bin/scv-hpc" image build \
  --add "$bin/faces:/usr/local/bin/faces" \
  --add "$cascade:/usr/share/faces/facefinder" \
  --entrypoint /usr/local/bin/faces \
  --label org.scivision.predict=/usr/local/bin/faces \
  --label org.opencontainers.image.title=faces \
  --push "localhost:$port/scivision/faces:1.0"

echo "==> fetching the sample images (Debian's python3-skimage and opencv-doc)"
scripts/sample-images.sh "$root/.cache/samples"

echo "==> scv-hpc predict faces"
rm -rf "$out"
set +e
"$bin/scv-hpc" --cache "$cache" predict faces --data "$root/.cache/samples" --out "$out" \
  --runtime builtin --shard-size 3
rc=$?
set -e
[ $rc -eq 0 ] || [ $rc -eq 3 ] || exit $rc

echo "==> the cache: the SIF it runs, by digest, and what is inside"
"$bin/scv-hpc" --cache "$cache" cache ls
"$bin/scv-hpc" --cache "$cache" --offline inspect faces | sed -n '1,/^Descriptors:/p;/^  ID /p;/^  [0-9]/p'

echo "==> collecting"
"$bin/scv-hpc" collect "$out" -o "$out/results.jsonl" || true

echo
echo "faces per image:"
awk '{
  path=$0; sub(/.*"path":"/, "", path); sub(/".*/, "", path);
  if ($0 ~ /"ok":true/) { n=$0; sub(/.*"count":/, "", n); sub(/[^0-9].*/, "", n); printf "  %-16s %s face(s)\n", path, n }
  else { e=$0; sub(/.*"error":"/, "", e); sub(/".*/, "", e); printf "  %-16s FAILED: %s\n", path, e }
}' "$out/results.jsonl"
echo "==> the report"
"$bin/scv-hpc" report "$out" -o "$out/report.html"

echo
echo "results: $out/results.jsonl (per shard: $out/results/, logs: $out/logs/)"
echo "report:  $out/report.html (open it in a browser)"
