#!/bin/bash
# neomutt (a terminal client) against a running Petrel, driven in tmux:
# it lists INBOX over IMAPS (UTF-8 subjects included), opens a message
# (\Seen), flags one, deletes one and syncs (EXPUNGE), then sees mail that
# arrives while it is open. Python's imaplib checks the server's state.
# Needs neomutt and tmux (apt-get install neomutt tmux); not part of CI.
# Usage: scripts/neomutt_check.sh [path/to/petrel]   (default target/debug/petrel)
set -euo pipefail
P=$(realpath "${1:-target/debug/petrel}")
W=$(mktemp -d)
trap 'tmux kill-session -t petrel-neomutt 2>/dev/null || true; kill $(cat $W/pid) 2>/dev/null || true; rm -rf $W' EXIT
mkdir -p $W/data
cat > $W/data/config.toml <<CFG
hostname = "mx.test"
[listeners]
smtp = ["127.0.0.1:12525"]
imap = ["127.0.0.1:12143"]
imaps = ["127.0.0.1:12993"]
http = ["127.0.0.1:18080"]
submission = []
submissions = []
pop3 = []
pop3s = []
CFG
PETREL_ADMIN_PASSWORD='neomutt-admin-secret-42' $P serve --data-dir $W/data > $W/server.log 2>&1 &
echo $! > $W/pid
for _ in $(seq 1 100); do grep -q "petrel: ready" $W/server.log && break; sleep 0.2; done
export PETREL_CREDENTIALS='admin:neomutt-admin-secret-42'
$P --url http://127.0.0.1:18080 domain create example.org > /dev/null
$P --url http://127.0.0.1:18080 account create joe@example.org --secret 'plum vortex tangerine sleeps' > /dev/null
send() {
    python3 - "$@" <<'PY'
import smtplib, sys
subject, n = sys.argv[1], sys.argv[2]
msg = f"From: ann@example.net\r\nTo: joe@example.org\r\nSubject: {subject}\r\nMessage-ID: <nm{n}@example.net>\r\nDate: Fri, 27 Nov 2026 1{n}:00:00 +0000\r\n\r\nBody {n}.\r\n"
with smtplib.SMTP("127.0.0.1", 12525) as s:
    s.sendmail("ann@example.net", ["joe@example.org"], msg.encode())
PY
}
send "Lunch on Friday" 0; send "Quarterly report" 1; send "Café opening" 2
cat > $W/muttrc <<RC
set folder = "imaps://joe@example.org@127.0.0.1:12993/"
set spoolfile = "+INBOX"
set imap_pass = "plum vortex tangerine sleeps"
set ssl_verify_host = no
set certificate_file = $W/certs
set mail_check = 2
set timeout = 2
set sort = date
set delete = yes
set header_cache = ""
set message_cachedir = ""
RC
screen() { sleep "$1"; tmux capture-pane -p -t petrel-neomutt; }
expect() { echo "$2" | grep -q -- "$1" || { echo "neomutt: expected '$1' in:"; echo "$2"; exit 1; }; }
tmux new-session -d -s petrel-neomutt -x 160 -y 40 "neomutt -n -F $W/muttrc"
expect "certificate" "$(screen 3)"
tmux send-keys -t petrel-neomutt a          # accept the self-signed certificate
s=$(screen 3)
expect "Lunch on Friday" "$s"; expect "Café opening" "$s"
tmux send-keys -t petrel-neomutt Enter      # open message 1
expect "Body 0." "$(screen 2)"
tmux send-keys -t petrel-neomutt i j F j d '$'   # back, flag 2, delete 3, sync
s=$(screen 3)
if echo "$s" | grep -q "Café opening"; then echo "neomutt: message 3 not expunged"; echo "$s"; exit 1; fi
send "Arrived while open" 3
sleep 5; tmux send-keys -t petrel-neomutt '$'
expect "Arrived while open" "$(screen 3)"
tmux send-keys -t petrel-neomutt q
python3 - <<'PY'
import imaplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", 12993, ssl_context=ctx)
m.login("joe@example.org", "plum vortex tangerine sleeps")
m.select("INBOX")
typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
got = [(d[0].decode(), d[1].decode().strip()) for d in data if isinstance(d, tuple)]
assert len(got) == 3, got
assert "\\Seen" in got[0][0] and "Lunch" in got[0][1], got
assert "\\Flagged" in got[1][0] and "Quarterly" in got[1][1], got
assert "Arrived" in got[2][1], got
print("neomutt check passed:", [s for _, s in got])
PY
