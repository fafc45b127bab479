#!/bin/sh
# Install podwire-webhook (deploy/webhook.yaml) with a certificate made here:
# a CA and a serving certificate for podwire-webhook.NS.svc (openssl), the
# Secret podwire-webhook-tls holding the certificate and key, and the CA in
# the MutatingWebhookConfiguration's caBundle. Run it again to renew the
# certificate (the Deployment then needs a restart to load it).
#
# Usage: deploy/webhook-install.sh [--namespace NS] [--days N] [--dry-run]
#   --namespace NS  where the webhook runs (default podwire)
#   --days N        validity of the certificate (default 825)
#   --dry-run       print what would be applied instead of applying it
# Needs kubectl (set $KUBECTL to use another command) and openssl.
set -eu

ns=podwire
days=825
dry=0
while [ $# -gt 0 ]; do
	case "$1" in
	--namespace) ns=$2; shift 2 ;;
	--days) days=$2; shift 2 ;;
	--dry-run) dry=1; shift ;;
	-h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "webhook-install: unknown argument: $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$days" in '' | *[!0-9]*) echo "webhook-install: --days wants a number" >&2; exit 2 ;; esac
kubectl=${KUBECTL:-kubectl}
here=$(cd "$(dirname "$0")" && pwd)
command -v openssl >/dev/null || { echo "webhook-install: needs openssl" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
svc=podwire-webhook.$ns.svc
openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=podwire-webhook-ca" \
	-keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$svc" -keyout "$tmp/tls.key" \
	-out "$tmp/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local,DNS:podwire-webhook.%s\nextendedKeyUsage=serverAuth\n' \
	"$svc" "$svc" "$ns" >"$tmp/ext.cnf"
openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
	-days "$days" -extfile "$tmp/ext.cnf" -out "$tmp/tls.crt" 2>/dev/null
ca=$(base64 <"$tmp/ca.crt" | tr -d '\n')

# The manifests with this namespace and CA.
sed -e "s|caBundle: \"\"|caBundle: \"$ca\"|" \
	-e "s|namespace: podwire\$|namespace: $ns|" \
	-e "s|name: podwire\$|name: $ns|" \
	-e "s|service: { namespace: podwire,|service: { namespace: $ns,|" \
	"$here/webhook.yaml" >"$tmp/webhook.yaml"
if [ "$dry" -eq 1 ]; then
	cat "$tmp/webhook.yaml"
	echo "--- (and the Secret $ns/podwire-webhook-tls with the certificate for $svc)"
	exit 0
fi
$kubectl apply -f "$tmp/webhook.yaml" >/dev/null
$kubectl -n "$ns" create secret tls podwire-webhook-tls --cert "$tmp/tls.crt" \
	--key "$tmp/tls.key" --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
echo "podwire-webhook installed in namespace $ns (certificate for $svc, $days days)."
echo "Opt a namespace in: $kubectl label namespace NAME podwire.io/inject=enabled"
