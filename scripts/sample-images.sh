#!/bin/sh
# sample-images.sh DESTDIR: fetch the six real sample images the demo and the tests use,
# from Debian packages, without installing anything:
#   python3-skimage: astronaut.png camera.png coins.png chelsea.png coffee.png
#   opencv-doc:      messi5.jpg
# The .deb files are downloaded with 'apt-get download' into a temporary directory,
# unpacked with 'dpkg-deb -x', and the images copied into DESTDIR.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DESTDIR" >&2
	exit 2
fi
dest=$1
mkdir -p "$dest"

skimage="astronaut.png camera.png coins.png chelsea.png coffee.png"
have_all=1
for f in $skimage messi5.jpg; do
	[ -s "$dest/$f" ] || have_all=0
done
[ "$have_all" = 1 ] && exit 0

work=$(mktemp -d "${TMPDIR:-/tmp}/scv-samples.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# apt-get download writes into the current directory and, run as root, drops
# privileges to the _apt user: let that user write there.
chmod 0777 "$work"
cd "$work"
if ! apt-get download python3-skimage opencv-doc >download.log 2>&1; then
	echo "apt-get download failed; refreshing the package lists (apt-get update)" >&2
	apt-get update >update.log 2>&1 || { cat update.log >&2; exit 1; }
	apt-get download python3-skimage opencv-doc >download.log 2>&1 || { cat download.log >&2; exit 1; }
fi

for deb in python3-skimage_*.deb opencv-doc_*.deb; do
	[ -f "$deb" ] || { echo "missing $deb after apt-get download" >&2; exit 1; }
done

mkdir sk cv
dpkg-deb -x python3-skimage_*.deb sk
for f in $skimage; do
	src=sk/usr/lib/python3/dist-packages/skimage/data/$f
	[ -s "$src" ] || { echo "python3-skimage has no $f under usr/lib/python3/dist-packages/skimage/data/" >&2; exit 1; }
	cp "$src" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"
done

# opencv-doc ships messi5.jpg under its documentation tree; take its path from the package
# listing rather than guessing it.
messi=$(dpkg-deb -c opencv-doc_*.deb | awk '{print $NF}' | grep '/messi5\.jpg$' | head -n 1)
[ -n "$messi" ] || { echo "opencv-doc has no messi5.jpg" >&2; exit 1; }
dpkg-deb --fsys-tarfile opencv-doc_*.deb | tar -x -C cv "$messi"
cp "cv/$messi" "$dest/messi5.jpg.tmp" && mv "$dest/messi5.jpg.tmp" "$dest/messi5.jpg"
echo "sample images in $dest" >&2
