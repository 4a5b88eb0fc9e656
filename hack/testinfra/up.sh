#!/usr/bin/env bash
# Start the real servers the tests use, all on 127.0.0.1, and write one env file describing them.
#   up.sh [k8s] [registry] [git]     (default: all three)
# Idempotent: a server whose recorded PID is alive and healthy is left alone, so a second run takes well under
# a second. PIDs are recorded in $TESTINFRA/**/*.pid; down.sh stops exactly those.
#   k8s:      etcd 3.4 + kube-apiserver v1.20.2 + kube-controller-manager (built once by k8s-build.sh, cached)
#   registry: docker-registry plain HTTP, TLS + htpasswd basic auth, TLS + bearer token (+ token server),
#             TLS + client certificate (mTLS)
#   git:      lighttpd + git-http-backend (HTTP and HTTPS, basic auth, push enabled), openssh-server (git-shell)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/config.sh"
WHAT=("$@"); [ ${#WHAT[@]} -gt 0 ] || WHAT=(k8s registry git)
mkdir -p "$TESTINFRA"
"$HERE/install-deps.sh"

# make_ca DIR CN: a CA and a server certificate for 127.0.0.1/localhost in DIR (kept across runs).
make_ca() {
  local d=$1 cn=$2
  [ -f "$d/server.crt" ] && return 0
  mkdir -p "$d"
  ( cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=$cn" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3650 -extfile ext.cnf 2>/dev/null )
}

up_k8s() {
  local B=$TESTINFRA/k8s
  mkdir -p "$B/pki" "$B/logs"
  api_ok() { curl -sf --cacert "$B/pki/ca.crt" -H "Authorization: Bearer $(cat "$B/pki/admin.token")" "https://127.0.0.1:$API_PORT/readyz" | grep -qx ok; }
  if alive "$B/apiserver.pid" && alive "$B/etcd.pid" && api_ok; then
    alive "$B/kcm.pid" || start_kcm
    echo "k8s: already running"; return 0
  fi
  [ -x "$K8S_BIN/kube-apiserver" ] || "$HERE/k8s-build.sh" >/dev/null
  ( cd "$B/pki"
    if [ ! -f ca.crt ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=tagpilot-test-k8s-ca" 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > apiserver.ext
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
      printf 'extendedKeyUsage=clientAuth\n' > client.ext
      openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile client.ext 2>/dev/null
      openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > admin.token
      printf '%s,admin,admin-uid,"system:masters"\n' "$(cat admin.token)" > tokens.csv
    fi )
  stop_pidfile "$B/kcm.pid" >/dev/null; stop_pidfile "$B/apiserver.pid" >/dev/null
  if ! alive "$B/etcd.pid"; then
    nohup etcd --name tagpilot-test --data-dir "$B/etcd-data" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "tagpilot-test=http://127.0.0.1:$ETCD_PEER_PORT" > "$B/logs/etcd.log" 2>&1 &
    echo $! > "$B/etcd.pid"
    wait_for 20 sh -c "curl -sf http://127.0.0.1:$ETCD_PORT/health | grep -q '\"health\":\"true\"'" \
      || { echo "etcd did not start; see $B/logs/etcd.log" >&2; tail -5 "$B/logs/etcd.log" >&2; exit 1; }
  fi
  start_apiserver
  start_kcm
  echo "k8s: kube-apiserver $K8S_VERSION on https://127.0.0.1:$API_PORT"
}

# start_apiserver [DIR PORT ETCD_PREFIX]: the shared API server (default), or another one over the same etcd
# under its own key prefix (an empty cluster), for tests that kill and restart an API server:
#   up.sh apiserver NAME PORT   starts $TESTINFRA/k8s-NAME (pid, kubeconfig, log there); down.sh stops it too.
start_apiserver() {
  local B=${1:-$TESTINFRA/k8s} PORT=${2:-$API_PORT} PREFIX=${3:-/registry} PKI=$TESTINFRA/k8s/pki
  mkdir -p "$B/logs"
  ( cd "$B"
    nohup "$K8S_BIN/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$ETCD_PORT" --etcd-prefix="$PREFIX" \
      --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT" --insecure-port=0 \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
      --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
      --authorization-mode=RBAC \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
      --profiling=false > logs/apiserver.log 2>&1 &
    echo $! > apiserver.pid )
  cat > "$B/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tagpilot-test
  cluster: {server: "https://127.0.0.1:$PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: admin
  user: {token: "$(cat "$PKI/admin.token")"}
- name: admin-cert
  user: {client-certificate: "$PKI/admin.crt", client-key: "$PKI/admin.key"}
contexts:
- name: tagpilot-test
  context: {cluster: tagpilot-test, user: admin, namespace: default}
- name: tagpilot-test-cert
  context: {cluster: tagpilot-test, user: admin-cert, namespace: default}
current-context: tagpilot-test
KC
  local ok=
  for _ in $(seq 1 1200); do   # up to 60 s
    alive "$B/apiserver.pid" || break
    if [ "$(curl -s --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" "https://127.0.0.1:$PORT/readyz")" = ok ] \
      && curl -sf --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" \
         "https://127.0.0.1:$PORT/api/v1/namespaces/default" >/dev/null; then ok=1; break; fi
    sleep 0.05
  done
  [ -n "$ok" ] || { echo "kube-apiserver not ready; tail of $B/logs/apiserver.log:" >&2; tail -20 "$B/logs/apiserver.log" >&2; exit 1; }
}

# kube-controller-manager: namespace deletion, garbage collection, default ServiceAccounts and their tokens.
start_kcm() {
  local B=$TESTINFRA/k8s
  ( cd "$B"
    nohup "$K8S_BIN/kube-controller-manager" --kubeconfig="$B/kubeconfig" --leader-elect=false --port=0 --secure-port=0 \
      --controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token \
      --service-account-private-key-file=pki/sa.key --root-ca-file=pki/ca.crt > logs/kcm.log 2>&1 &
    echo $! > kcm.pid )
  wait_for 60 curl -sf --cacert "$B/pki/ca.crt" -H "Authorization: Bearer $(cat "$B/pki/admin.token")" \
    "https://127.0.0.1:$API_PORT/api/v1/namespaces/default/serviceaccounts/default" \
    || { echo "kube-controller-manager did not create the default ServiceAccount; see $B/logs/kcm.log" >&2; exit 1; }
}

up_registry() {
  local B=$TESTINFRA/registry
  mkdir -p "$B"
  make_ca "$B/tls" tagpilot-test-registry-ca
  [ -f "$B/tls/token.crt" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$B/tls/token.key" -out "$B/tls/token.crt" \
      -days 3650 -subj "/CN=tagpilot-test-token-signer" 2>/dev/null
  [ -f "$B/htpasswd" ] || htpasswd -Bbn "$REG_USER" "$REG_PASS" > "$B/htpasswd"   # distribution needs bcrypt
  if [ ! -f "$B/tls/client.crt" ]; then   # a client certificate for the mTLS flavour, signed by the same CA
    ( cd "$B/tls"
      openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=tagpilot-test-client" 2>/dev/null
      printf 'extendedKeyUsage=clientAuth\n' > client.ext
      openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 3650 -extfile client.ext 2>/dev/null )
  fi
  common() { # port storage-dir
    printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n  secret: tagpilot-test-only\n' "$2" "$1"; }
  tls() { printf '  tls:\n    certificate: %s/tls/server.crt\n    key: %s/tls/server.key\n' "$B" "$B"; }
  common "$REG_PLAIN_PORT" "$B/data-plain" > "$B/plain.yml"
  { common "$REG_BASIC_PORT" "$B/data-basic"; tls; printf 'auth:\n  htpasswd:\n    realm: tagpilot-test\n    path: %s/htpasswd\n' "$B"; } > "$B/basic.yml"
  { common "$REG_TOKEN_PORT" "$B/data-token"; tls
    printf 'auth:\n  token:\n    realm: https://127.0.0.1:%s/token\n    service: tagpilot-test-registry\n    issuer: tagpilot-test-issuer\n    rootcertbundle: %s/tls/token.crt\n' "$TOKEN_PORT" "$B"; } > "$B/token.yml"
  { common "$REG_MTLS_PORT" "$B/data-mtls"; tls; printf '    clientcas:\n      - %s/tls/ca.crt\n' "$B"; } > "$B/mtls.yml"
  local started=
  for n in plain basic token mtls; do
    alive "$B/$n.pid" && continue
    nohup docker-registry serve "$B/$n.yml" > "$B/$n.log" 2>&1 &
    echo $! > "$B/$n.pid"; started=1
  done
  if ! alive "$B/token-server.pid"; then
    nohup python3 "$HERE/token-server.py" "$TOKEN_PORT" "$B/tls/token.key" "$B/tls/token.crt" tagpilot-test-issuer "$REG_USER:$REG_PASS" "$B/token-extra-users" \
      "$B/tls/server.crt" "$B/tls/server.key" > "$B/token-server.log" 2>&1 &
    echo $! > "$B/token-server.pid"; started=1
  fi
  code() { [ "$(curl -s -o /dev/null -w '%{http_code}' "${@:3}" "$1")" = "$2" ]; }
  wait_for 20 code "http://127.0.0.1:$REG_PLAIN_PORT/v2/" 200 || { echo "plain registry did not start; see $B/plain.log" >&2; exit 1; }
  wait_for 20 code "https://127.0.0.1:$REG_BASIC_PORT/v2/" 200 --cacert "$B/tls/ca.crt" -u "$REG_USER:$REG_PASS" \
    || { echo "basic-auth registry did not start; see $B/basic.log" >&2; exit 1; }
  wait_for 20 code "https://127.0.0.1:$REG_TOKEN_PORT/v2/" 401 --cacert "$B/tls/ca.crt" || { echo "token registry did not start; see $B/token.log" >&2; exit 1; }
  wait_for 20 code "https://127.0.0.1:$REG_MTLS_PORT/v2/" 200 --cacert "$B/tls/ca.crt" --cert "$B/tls/client.crt" --key "$B/tls/client.key" \
    || { echo "mTLS registry did not start; see $B/mtls.log" >&2; exit 1; }
  wait_for 20 code "https://127.0.0.1:$TOKEN_PORT/token?service=tagpilot-test-registry" 200 --cacert "$B/tls/ca.crt" -u "$REG_USER:$REG_PASS" \
    || { echo "token server did not start; see $B/token-server.log" >&2; exit 1; }
  local what="already running"; [ -n "$started" ] && what=started
  echo "registry: $what: plain :$REG_PLAIN_PORT, TLS+basic :$REG_BASIC_PORT, TLS+token :$REG_TOKEN_PORT, mTLS :$REG_MTLS_PORT"
}

up_git() {
  local B=$TESTINFRA/git
  mkdir -p "$B"/repos "$B"/www "$B"/logs
  id git >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s "$(command -v git-shell)" git
  usermod -p '*' git   # with UsePAM no, sshd refuses a locked ('!') account; '*' = no password, not locked
  chown git:git "$B/logs" "$B/repos"   # lighttpd opens its error log after dropping to the git user
  make_ca "$B/tls" tagpilot-test-git-ca
  chown git "$B/tls/server.key" "$B/tls/server.crt"
  [ -f "$B/htpasswd" ] || { htpasswd -Bbc "$B/htpasswd" "$GIT_USER" "$GIT_PASS" 2>/dev/null; chmod 644 "$B/htpasswd"; }
  grep -q '^x-access-token:' "$B/htpasswd" || htpasswd -Bb "$B/htpasswd" x-access-token "$GIT_APP_TOKEN" 2>/dev/null
  if ! alive "$B/lighttpd.pid"; then
    cat > "$B/lighttpd.conf" <<CONF
server.modules = ("mod_access", "mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv", "mod_openssl")
server.bind = "127.0.0.1"
server.username = "git"
server.groupname = "git"
server.port = $GIT_HTTP_PORT
server.document-root = "$B/www"
server.errorlog = "$B/logs/lighttpd-error.log"
\$SERVER["socket"] == "127.0.0.1:$GIT_HTTPS_PORT" {
  ssl.engine = "enable"
  ssl.pemfile = "$B/tls/server.crt"
  ssl.privkey = "$B/tls/server.key"
}
alias.url = ( "/git" => "$(git --exec-path)/git-http-backend" )
\$HTTP["url"] =~ "^/git" {
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => "$B/repos", "GIT_HTTP_EXPORT_ALL" => "" )
  auth.backend = "htpasswd"
  auth.backend.htpasswd.userfile = "$B/htpasswd"
  auth.require = ( "" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
}
CONF
    lighttpd -tt -f "$B/lighttpd.conf"
    nohup lighttpd -D -f "$B/lighttpd.conf" > "$B/logs/lighttpd.out" 2>&1 &
    echo $! > "$B/lighttpd.pid"
  fi
  [ -f "$B/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$B/ssh_host_ed25519_key" -C tagpilot-test-host
  [ -f "$B/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$B/client_ed25519" -C tagpilot-test-client
  cp "$B/client_ed25519.pub" "$B/authorized_keys.git"; chown git "$B/authorized_keys.git"; chmod 600 "$B/authorized_keys.git"
  echo "[127.0.0.1]:$GIT_SSH_PORT $(cut -d' ' -f1,2 "$B/ssh_host_ed25519_key.pub")" > "$B/known_hosts"
  if ! alive "$B/sshd.pid"; then
    cat > "$B/sshd_config" <<CONF
Port $GIT_SSH_PORT
ListenAddress 127.0.0.1
HostKey $B/ssh_host_ed25519_key
PidFile $B/sshd.pid
AuthorizedKeysFile $B/authorized_keys.%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
StrictModes no
UsePAM no
PrintMotd no
LogLevel VERBOSE
CONF
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    /usr/sbin/sshd -t -f "$B/sshd_config"
    # sshd writes its own PID to sshd.pid (the daemon, not a wrapper): down.sh stops that PID.
    nohup /usr/sbin/sshd -D -e -f "$B/sshd_config" > "$B/logs/sshd.log" 2>&1 &
  fi
  http_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' -u "$GIT_USER:$GIT_PASS" "http://127.0.0.1:$GIT_HTTP_PORT/git/")" != 000 ]; }
  ssh_ok() { ssh-keyscan -p "$GIT_SSH_PORT" -t ed25519 127.0.0.1 2>/dev/null | grep -q ssh-ed25519; }
  wait_for 20 http_ok || { echo "lighttpd did not start; see $B/logs" >&2; tail -5 "$B"/logs/lighttpd* >&2; exit 1; }
  wait_for 20 ssh_ok || { echo "sshd did not start; see $B/logs/sshd.log" >&2; tail -5 "$B/logs/sshd.log" >&2; exit 1; }
  wait_for 5 test -f "$B/sshd.pid"
  echo "git: http :$GIT_HTTP_PORT, https :$GIT_HTTPS_PORT, ssh :$GIT_SSH_PORT"
}

write_env() {
  local R=$TESTINFRA/registry G=$TESTINFRA/git K=$TESTINFRA/k8s
  cat > "$ENV_FILE.tmp" <<ENV
# Written by hack/testinfra/up.sh: every address, credential and path the tests need. Test-only secrets.
TAGPILOT_TESTINFRA=$TESTINFRA
TAGPILOT_TESTINFRA_SCRIPTS=$HERE
KUBECONFIG=$K/kubeconfig
KUBE_API_URL=https://127.0.0.1:$API_PORT
KUBE_CA_FILE=$K/pki/ca.crt
KUBE_TOKEN_FILE=$K/pki/admin.token
KUBE_APISERVER_PIDFILE=$K/apiserver.pid
KUBE_SPARE_API_PORT=$SPARE_API_PORT
KUBE_BARE_API_PORT=$BARE_API_PORT
KUBE_FLUX_API_PORT=$FLUX_API_PORT
KUBE_HELM_API_PORT=$HELM_API_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
REGISTRY_PLAIN=127.0.0.1:$REG_PLAIN_PORT
REGISTRY_BASIC=127.0.0.1:$REG_BASIC_PORT
REGISTRY_TOKEN=127.0.0.1:$REG_TOKEN_PORT
REGISTRY_TOKEN_REALM=https://127.0.0.1:$TOKEN_PORT/token
REGISTRY_TOKEN_SERVICE=tagpilot-test-registry
REGISTRY_MTLS=127.0.0.1:$REG_MTLS_PORT
REGISTRY_CLIENT_CERT_FILE=$R/tls/client.crt
REGISTRY_CLIENT_KEY_FILE=$R/tls/client.key
REGISTRY_CA_FILE=$R/tls/ca.crt
REGISTRY_TOKEN_EXTRA_USERS=$R/token-extra-users
REGISTRY_USERNAME=$REG_USER
REGISTRY_PASSWORD=$REG_PASS
GIT_HTTP_URL=http://127.0.0.1:$GIT_HTTP_PORT/git
GIT_HTTPS_URL=https://127.0.0.1:$GIT_HTTPS_PORT/git
GIT_CA_FILE=$G/tls/ca.crt
GIT_USERNAME=$GIT_USER
GIT_PASSWORD=$GIT_PASS
GIT_SSH_URL=ssh://git@127.0.0.1:$GIT_SSH_PORT$G/repos
GIT_SSH_KEY_FILE=$G/client_ed25519
GIT_SSH_KNOWN_HOSTS=$G/known_hosts
GIT_REPOS_DIR=$G/repos
GIT_APP_TOKEN=$GIT_APP_TOKEN
PRISM_BIN=$FORGE_VALIDATORS/node_modules/.bin/prism
GITHUB_OPENAPI=$FORGE_VALIDATORS/node_modules/@octokit/openapi/generated/api.github.com.json
ENV
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

if [ "${WHAT[0]}" = apiserver ]; then   # up.sh apiserver NAME PORT: another API server over the shared etcd
  [ ${#WHAT[@]} = 3 ] || { echo "usage: up.sh apiserver NAME PORT" >&2; exit 2; }
  D=$TESTINFRA/k8s-${WHAT[1]}
  stop_pidfile "$D/apiserver.pid" >/dev/null
  start_apiserver "$D" "${WHAT[2]}" "/${WHAT[1]}"
  echo "kube-apiserver ${WHAT[1]} on https://127.0.0.1:${WHAT[2]} (kubeconfig $D/kubeconfig)"
  exit 0
fi
for w in "${WHAT[@]}"; do
  case $w in
    k8s) up_k8s ;; registry) up_registry ;; git) up_git ;;
    *) echo "unknown component '$w' (expected k8s, registry or git)" >&2; exit 2 ;;
  esac
done
write_env
echo "env file: $ENV_FILE"
