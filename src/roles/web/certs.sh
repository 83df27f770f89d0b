# shellcheck shell=sh
# web-certs: the ACME certificates of the sites nginx serves, issued by certbot over
# HTTP-01 through nginx's webroot. Installed by vds-proxy as /usr/local/lib/vds-proxy/web-certs
# with these set above: CERT_DIR (the links nginx reads: SITE/fullchain.pem, privkey.pem),
# REQ_DIR (SITE.conf: what each certificate is for), WEBROOT, SELF (this file).
#
#   web-certs issue SITE    certificate for exactly the requested domains from the requested
#                           CA (nothing happens when it is already there), nginx reloaded
#   web-certs check SITE    exit 0 when the installed certificate is that one
#   web-certs installed     certbot's deploy hook (RENEWED_LINEAGE): relink, reload nginx
#   web-certs forget SITE   delete the certificate and its links

set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LIVE=/etc/letsencrypt/live
RENEWAL=/etc/letsencrypt/renewal

# read_request SITE: sets domains, server, email and ca from REQ_DIR/SITE.conf.
read_request() {
  domains='' server='' email='' ca=''
  [ -r "$REQ_DIR/$1.conf" ] || { echo "web-certs: no certificate request for site $1" >&2; exit 2; }
  while read -r key value; do
    case $key in
      domains) domains=$value ;;
      server) server=$value ;;
      email) email=$value ;;
      ca_file) ca=$value ;;
    esac
  done < "$REQ_DIR/$1.conf"
}

# sorted WORD...: the words sorted, on one line.
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' '; }

# names CERT: the DNS names a certificate is for, sorted, on one line.
names() {
  openssl x509 -noout -ext subjectAltName -in "$1" 2>/dev/null \
    | tr ',' '\n' | sed -n 's/^ *DNS://p' | sort | tr '\n' ' '
}

# lineage_ok SITE: certbot holds a certificate for exactly the requested domains from the
# requested CA.
lineage_ok() {
  [ -r "$LIVE/vds-$1/fullchain.pem" ] || return 1
  # shellcheck disable=SC2086 # the domain list is split on purpose
  [ "$(names "$LIVE/vds-$1/fullchain.pem")" = "$(sorted $domains)" ] || return 1
  grep -qxF "server = $server" "$RENEWAL/vds-$1.conf"
}

# linked SITE: nginx's certificate links point at certbot's certificate.
linked() {
  [ "$(readlink "$CERT_DIR/$1/fullchain.pem")" = "$LIVE/vds-$1/fullchain.pem" ] &&
    [ "$(readlink "$CERT_DIR/$1/privkey.pem")" = "$LIVE/vds-$1/privkey.pem" ]
}

# link SITE: points nginx's certificate links at certbot's (each link replaced atomically).
link() {
  mkdir -p "$CERT_DIR/$1" || return 1
  for f in fullchain.pem privkey.pem; do
    ln -sfn "$LIVE/vds-$1/$f" "$CERT_DIR/$1/.$f.new" &&
      mv -Tf "$CERT_DIR/$1/.$f.new" "$CERT_DIR/$1/$f" || return 1
  done
}

check() {
  read_request "$1"
  lineage_ok "$1" && linked "$1"
}

issue() {
  site=$1
  read_request "$site"
  if lineage_ok "$site"; then
    linked "$site" && { echo "certificate of $site is up to date"; return 0; }
  else
    [ -n "$ca" ] && export REQUESTS_CA_BUNDLE="$ca"
    set -- certonly --non-interactive --agree-tos --webroot -w "$WEBROOT" \
      --cert-name "vds-$site" --server "$server" --deploy-hook "$SELF installed"
    # Another CA, or a lineage made by hand: a new certificate now, not at expiry.
    [ -d "$LIVE/vds-$site" ] && set -- "$@" --force-renewal
    if [ -n "$email" ]; then
      set -- "$@" --email "$email"
    else
      set -- "$@" --register-unsafely-without-email
    fi
    for d in $domains; do set -- "$@" -d "$d"; done
    certbot "$@" || { echo "web-certs: certbot could not get a certificate for $site ($domains) from $server" >&2; return 1; }
  fi
  link "$site" && systemctl reload nginx
}

installed() {
  site=${RENEWED_LINEAGE##*/vds-}
  case $site in
    ''|*/*) echo "web-certs: $RENEWED_LINEAGE is not a vds-proxy certificate" >&2; return 0 ;;
  esac
  [ -r "$REQ_DIR/$site.conf" ] || return 0
  link "$site" && systemctl reload nginx
}

forget() {
  if [ -d "$LIVE/vds-$1" ] || [ -e "$RENEWAL/vds-$1.conf" ]; then
    certbot delete --non-interactive --cert-name "vds-$1" || return 1
  fi
  rm -rf "${CERT_DIR:?}/$1"
  # The last certificate gone: the directories the prepare step made go too.
  if rmdir "$CERT_DIR" 2>/dev/null; then rm -rf "${WEBROOT:?}"; fi
  return 0
}

case ${1:-} in
  issue|check|forget)
    case ${2:-} in ''|*/*|.*) echo "usage: web-certs $1 SITE" >&2; exit 2 ;; esac
    "$1" "$2" ;;
  installed) installed ;;
  *) echo "usage: web-certs issue|check|forget SITE, or installed (certbot deploy hook)" >&2; exit 2 ;;
esac
