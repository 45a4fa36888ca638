#!/usr/bin/env bash
# Takes docs/gui.png: the real anonshare-gui window, under Xvfb, listing a share that the
# command-line client just uploaded to a server on loopback. Needs xvfb, xauth and imagemagick
# (installed from Debian packages when missing) and the release binaries (`make build-gui`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v xvfb-run >/dev/null || missing+=(xvfb xauth)
command -v import >/dev/null || missing+=(imagemagick)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bin=target/release
work=$(mktemp -d /tmp/anonshare-gui.XXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/server.out"
"$bin/anonshare-server" --listen 127.0.0.1:0 --root "$work/root" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
read -r -t 20 line <"$work/server.out"
address=${line##* }

mkdir -p "$work/files"
printf 'Minutes of the May meeting\n' >"$work/files/minutes.txt"
head -c 1843200 /dev/urandom >"$work/files/holiday-photos.zip"
head -c 412000 /dev/urandom >"$work/files/report.pdf"
url=$("$bin/anonshare" --server "$address" upload --expires 3d \
  "$work/files/report.pdf" "$work/files/holiday-photos.zip" "$work/files/minutes.txt" 2>/dev/null)

mkdir -p "$work/home/Downloads"

# The window opens at 0,0 on a screen its own size; it connects and lists the share at once.
HOME="$work/home" xvfb-run -a -s "-screen 0 1000x760x24" bash -c '
  "$1" "$2" &
  gui=$!
  for _ in $(seq 100); do
    sleep 0.1
    import -window root "$3" 2>/dev/null && [ "$(convert "$3" -format "%[fx:mean]" info:)" != 0 ] && break
  done
  sleep 2   # connect, list and draw
  import -window root "$3"
  kill "$gui"
' _ "$bin/anonshare-gui" "$url" docs/gui.png
echo "docs/gui.png: $url"
