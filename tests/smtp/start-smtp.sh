#!/usr/bin/env bash
# Starts a real SMTP server (aiosmtpd, tests/smtp/server.py) on 127.0.0.1 for the mail tests, and
# prints the environment they need:
#
#   eval "$(tests/smtp/start-smtp.sh)"
#
# It requires STARTTLS (a throw-away CA and a server certificate for localhost, 127.0.0.1 and ::1,
# made here with openssl at each fresh start) and then AUTH PLAIN or LOGIN as a generated user.
# Every message it takes lands as an .eml file in GATEHOUSE_TEST_SMTP_MAILDIR; a file named after a
# recipient address in GATEHOUSE_TEST_SMTP_REFUSE_DIR makes it answer 554 for that recipient's mail.
# Exports GATEHOUSE_TEST_SMTP_HOST, _PORT, _USER, _PASSWORD, _CA_FILE, _MAILDIR and _REFUSE_DIR
# (test names, so they never configure a `gatehouse serve` started from the same shell).
#
# Installs aiosmtpd into the test venv (.venv-test, shared with moto) when missing. Idempotent: a
# server this script already started and that still answers is reused. Everything but the export
# lines goes to stderr. Stop it with tests/smtp/stop-smtp.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-test"
out="$root/test-output"
state="$out/smtp"
pid_file="$out/smtp.pid"
env_file="$out/smtp.env"
log_file="$out/smtp.log"
aiosmtpd_version="1.4.6"
mkdir -p "$out"

answers() {
    "$venv/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=2) as s:
    s.ehlo()
    assert s.has_extn("starttls")
PY
}

# 1. aiosmtpd in the venv, once.
if ! "$venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$aiosmtpd_version')" >/dev/null 2>&1; then
    echo "start-smtp: installing aiosmtpd $aiosmtpd_version into $venv" >&2
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$aiosmtpd_version" >&2
fi

# 2. Reuse a running server of ours.
if [[ -f "$pid_file" && -f "$env_file" ]]; then
    pid="$(cat "$pid_file")"
    port="$(sed -n 's/^export GATEHOUSE_TEST_SMTP_PORT=//p' "$env_file")"
    if kill -0 "$pid" 2>/dev/null && answers "$port"; then
        echo "start-smtp: SMTP server already running (pid $pid, port $port)" >&2
        cat "$env_file"
        exit 0
    fi
    rm -f "$pid_file" "$env_file"
fi

# 3. Fresh state: certificates, an empty mail folder, no refusals.
rm -rf "$state"
mkdir -p "$state/mail" "$state/refuse"
chmod 700 "$state"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Gatehouse test SMTP CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$state/ca.key" -out "$state/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$state/server.key" -out "$state/server.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$state/server.ext"
openssl x509 -req -in "$state/server.csr" -CA "$state/ca.pem" -CAkey "$state/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 2 -extfile "$state/server.ext" \
    -out "$state/server.pem" 2>/dev/null
rm -f "$state/server.csr" "$state/server.ext" "$state/ca.key"

# 4. A free port and a generated user, then the server in the background, detached from our
# stdout so `$(...)` returns. The password goes through the environment, never the command line.
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
user="gatehouse-test-$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(4))')"
password="$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')"
SMTP_PORT="$port" SMTP_USER="$user" SMTP_PASSWORD="$password" \
    SMTP_CERT="$state/server.pem" SMTP_KEY="$state/server.key" \
    SMTP_MAILDIR="$state/mail" SMTP_REFUSE_DIR="$state/refuse" \
    nohup "$venv/bin/python" -u "$here/server.py" </dev/null >"$log_file" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"
(
    umask 077
    cat >"$env_file" <<EOF
export GATEHOUSE_TEST_SMTP_HOST=127.0.0.1
export GATEHOUSE_TEST_SMTP_PORT=$port
export GATEHOUSE_TEST_SMTP_USER=$user
export GATEHOUSE_TEST_SMTP_PASSWORD=$password
export GATEHOUSE_TEST_SMTP_CA_FILE=$state/ca.pem
export GATEHOUSE_TEST_SMTP_MAILDIR=$state/mail
export GATEHOUSE_TEST_SMTP_REFUSE_DIR=$state/refuse
EOF
)

# 5. Wait until it answers (under a second; 30 s at most).
for _ in $(seq 1 150); do
    if answers "$port"; then
        echo "start-smtp: SMTP server (STARTTLS, AUTH) on 127.0.0.1:$port (pid $pid, log $log_file)" >&2
        cat "$env_file"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start-smtp: the SMTP server exited; its log:" >&2
        cat "$log_file" >&2
        rm -f "$pid_file" "$env_file"
        exit 1
    fi
    sleep 0.2
done
echo "start-smtp: the SMTP server did not answer on port $port within 30 s; its log:" >&2
cat "$log_file" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pid_file" "$env_file"
exit 1
