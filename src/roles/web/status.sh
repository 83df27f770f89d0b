# shellcheck shell=sh
# The web edge as its clients see it, for `status`.

# web_site SITE SCHEME PORT DOMAIN CERT: one request to the site on this node (certificate
# not checked here: compared below), then for HTTPS the certificate on file and the one
# nginx serves. Prints "@web SITE CODE DAYS_LEFT PLACEHOLDER FILE_SHA256 SERVED_SHA256"
# ("-" for what does not apply).
web_site() {
  site=$1 scheme=$2 port=$3 domain=$4 cert=$5
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 \
    --resolve "$domain:$port:127.0.0.1" "$scheme://$domain:$port/" 2>/dev/null) || true
  days=- placeholder=- file=- served=-
  if [ "$cert" != - ]; then
    if [ -r "$cert" ]; then
      end=$(openssl x509 -noout -enddate -in "$cert" 2>/dev/null | cut -d= -f2)
      [ -n "$end" ] && days=$(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))
      placeholder=no
      openssl x509 -noout -subject -in "$cert" 2>/dev/null | grep -q 'vds-proxy placeholder' && placeholder=yes
      file=$(openssl x509 -noout -fingerprint -sha256 -in "$cert" 2>/dev/null | cut -d= -f2)
    fi
    served=$(timeout 5 openssl s_client -connect "127.0.0.1:$port" -servername "$domain" </dev/null 2>/dev/null \
      | openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2)
  fi
  echo "@web $site ${code:-000} $days $placeholder ${file:--} ${served:--}"
}

# web_nginx CONF LAST_LOAD: whether nginx runs, and whether it has loaded CONF as it is on
# disk: the file's modification time against systemd's last start or reload of nginx, which
# the command LAST_LOAD prints. Prints "@nginx ACTIVE FILE_MTIME LAST_LOAD" ("-" when unknown).
web_nginx() {
  active=$(systemctl is-active nginx.service 2>/dev/null)
  mtime=$(stat -c %Y "$1" 2>/dev/null)
  last=$(eval "$2")
  echo "@nginx ${active:--} ${mtime:--} ${last:--}"
}
