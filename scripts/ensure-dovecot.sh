#!/usr/bin/env bash
# Debian's Dovecot IMAP server for the channels tests (they start it themselves, on loopback, on an
# ephemeral port, with their own configuration; the system service is never used).
set -euo pipefail
if ! command -v dovecot >/dev/null 2>&1 || [ ! -x /usr/lib/dovecot/imap ]; then
  echo "installing Debian's dovecot-imapd"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
fi
