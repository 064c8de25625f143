#!/bin/sh
# make_rootfs.sh ROOTFS BINARY...
#
# Assembles the file tree of egressd's runtime image (deploy/Dockerfile copies
# it onto an empty image): each BINARY in /usr/local/bin, every shared library
# `ldd` lists for them at the path ldd prints (symlinks resolved), the dynamic
# loader, Debian's CA bundle where OpenSSL looks for it, and /etc/passwd and
# /etc/group naming the non-root user 65532. Nothing else: no shell, no
# package manager, no libraries the binaries do not load.
#
# Runs on the build machine (Debian 12) after the Bazel build; tests/deploy
# runs it too and starts egressd from the result with chroot.
set -eu

if [ "$#" -lt 2 ]; then
  echo "usage: make_rootfs.sh ROOTFS BINARY..." >&2
  exit 2
fi
root=$1
shift

mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/usr/lib/ssl"

copy_file() {  # copy_file SOURCE: to the same path under $root
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
}

for binary in "$@"; do
  cp -L "$binary" "$root/usr/local/bin/"
  libraries=$(ldd "$binary")
  if printf '%s\n' "$libraries" | grep -q 'not found'; then
    printf '%s\n' "$libraries" | grep 'not found' >&2
    echo "make_rootfs.sh: $binary needs libraries that are not installed" >&2
    exit 1
  fi
  # "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" and the loader,
  # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
  printf '%s\n' "$libraries" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
                                    $1 ~ /^\// { print $1 }' |
    while read -r library; do
      copy_file "$library"
    done
done

# OpenSSL (SSL_CTX_set_default_verify_paths) reads /usr/lib/ssl/cert.pem and
# /usr/lib/ssl/certs; gRPC and most tools honour SSL_CERT_FILE too.
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
ln -sfn /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
ln -sfn /etc/ssl/certs "$root/usr/lib/ssl/certs"

# A name for the numeric user, for tools that look it up; egressd does not.
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\negressd:x:65532:65532:egressd:/nonexistent:/usr/sbin/nologin\n' \
  > "$root/etc/passwd"
printf 'root:x:0:\negressd:x:65532:\n' > "$root/etc/group"
# glibc's default without this file would also try NIS-era sources.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
