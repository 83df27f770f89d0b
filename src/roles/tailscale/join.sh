# shellcheck shell=sh
# Whether this node is in the tailnet, for the prepare step and `status`.

# ts_state: "@ts STATE" with tailscaled's BackendState (Running, NeedsLogin, Stopped, …),
# "@ts absent" when tailscale is not installed, "@ts unknown" when it does not answer.
ts_state() {
  command -v tailscale >/dev/null 2>&1 || { echo '@ts absent'; return 0; }
  st=$(tailscale status --json 2>/dev/null | tr -d ' \n\t' \
    | sed -n 's/.*"BackendState":"\([A-Za-z]*\)".*/\1/p')
  echo "@ts ${st:-unknown}"
}
