# shellcheck shell=sh
# WireGuard keys: each node's private key is made on the node and never leaves it; only
# the public key is printed. Called as: wg_keys MODE KEY_DIR IFACE...

# wg_keys read|create|rotate DIR IFACE...: for each interface, ensure (or replace) the key
# DIR/IFACE.key and print "@pub IFACE KEY" (or "@nokey IFACE", "@keyfail IFACE"); "@nowg"
# when the wg command is missing.
wg_keys() {
  mode=$1 dir=$2
  shift 2
  command -v wg >/dev/null 2>&1 || { echo '@nowg'; return 0; }
  umask 077
  for iface in "$@"; do
    k="$dir/$iface.key"
    case $mode in
      create) [ -s "$k" ] || wg_genkey "$dir" "$k" "$iface" ;;
      rotate) wg_genkey "$dir" "$k" "$iface" ;;
    esac
    if [ -s "$k" ]; then echo "@pub $iface $(wg pubkey < "$k")"; else echo "@nokey $iface"; fi
  done
}

# wg_genkey DIR KEY IFACE: a new private key, written atomically.
wg_genkey() {
  mkdir -p "$1" && wg genkey > "$2.tmp" && mv -f "$2.tmp" "$2" || echo "@keyfail $3"
}
