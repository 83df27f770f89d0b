# shellcheck shell=sh
# The web edge's prepare step: nginx and certbot are installed, and every site with a
# certificate from an ACME CA has one to start nginx with: certbot's once issued, until
# then a self-signed placeholder made here (nginx cannot load a site without one, and the
# CA can only validate a domain once nginx serves it).

# web_prepare MODE CERT_DIR WEBROOT SITE...: prints "@missing PROGRAM" for each program
# that is not installed and "@cert SITE present|placeholder|none" (or "@certfail SITE").
# MODE read only looks.
web_prepare() {
  mode=$1 dir=$2 webroot=$3
  shift 3
  command -v nginx >/dev/null 2>&1 || echo '@missing nginx'
  [ $# = 0 ] && return 0
  command -v certbot >/dev/null 2>&1 || echo '@missing certbot'
  command -v openssl >/dev/null 2>&1 || { echo '@missing openssl'; return 0; }
  [ "$mode" = read ] || mkdir -p "$webroot" || echo "@certfail - cannot create $webroot"
  for site in "$@"; do
    d=$dir/$site
    if [ -e "$d/fullchain.pem" ] && [ -e "$d/privkey.pem" ]; then
      echo "@cert $site present"
    elif [ "$mode" = read ]; then
      echo "@cert $site none"
    elif mkdir -p "$dir" && (umask 077 && mkdir -p "$d" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=vds-proxy placeholder for $site" \
        -keyout "$d/.privkey.pem.new" -out "$d/.fullchain.pem.new" >/dev/null 2>&1 &&
      mv -f "$d/.privkey.pem.new" "$d/privkey.pem" &&
      mv -f "$d/.fullchain.pem.new" "$d/fullchain.pem"); then
      echo "@cert $site placeholder"
    else
      echo "@certfail $site"
    fi
  done
}
