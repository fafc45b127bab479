#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Kubernetes API-server test double (Python 3 stdlib only).

Serves pods (+binding, +status), nodes (+status), core/v1 events and
coordination.k8s.io/v1 leases from memory, with the real server's wire format:
List kinds, Status objects, one global resourceVersion, chunked
newline-delimited watches with bookmarks and 410 Gone. /_test/ endpoints
inject faults. The contract is in tests/kube/README.md.
"""

import argparse
import copy
import datetime
import json
import os
import random
import select
import signal
import socket
import ssl
import string
import sys
import threading
import time
import urllib.parse
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def dumps(obj):
    return json.dumps(obj, separators=(',', ':'))

RESOURCES = {
    'pods': dict(kind='Pod', list='PodList', api='v1', ns=True, group='',
                 fields={'metadata.name', 'metadata.namespace', 'spec.nodeName',
                         'spec.restartPolicy', 'spec.schedulerName',
                         'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase',
                         'status.podIP', 'status.nominatedNodeName'}),
    'nodes': dict(kind='Node', list='NodeList', api='v1', ns=False, group='',
                  fields={'metadata.name', 'spec.unschedulable'}),
    'events': dict(kind='Event', list='EventList', api='v1', ns=True, group='',
                   fields={'metadata.name', 'metadata.namespace', 'involvedObject.kind',
                           'involvedObject.namespace', 'involvedObject.name',
                           'involvedObject.uid', 'involvedObject.apiVersion',
                           'involvedObject.resourceVersion', 'involvedObject.fieldPath',
                           'reason', 'reportingComponent', 'source', 'type'}),
    'leases': dict(kind='Lease', list='LeaseList', api='coordination.k8s.io/v1', ns=True,
                   group='coordination.k8s.io', fields={'metadata.name', 'metadata.namespace'}),
}
GROUP_PREFIX = {'': '/api/v1', 'coordination.k8s.io': '/apis/coordination.k8s.io/v1'}

# Strategic-merge-patch list merge keys (patchMergeKey in the Kubernetes types).
MERGE_KEYS = {
    'conditions': 'type', 'addresses': 'type', 'containers': 'name', 'initContainers': 'name',
    'ephemeralContainers': 'name', 'env': 'name', 'volumes': 'name',
    'volumeMounts': 'mountPath', 'ports': 'containerPort', 'taints': 'key',
    'imagePullSecrets': 'name', 'hostAliases': 'ip',
}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def status_obj(code, reason, message, details=None):
    return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
            'message': message, 'reason': reason, 'details': details or {}, 'code': code}


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.body = status_obj(code, reason, message, details)


def not_found(res, name):
    g = RESOURCES[res]['group']
    qual = res + ('.' + g if g else '')
    return ApiError(404, 'NotFound', '%s "%s" not found' % (qual, name),
                    {'name': name, 'kind': res, **({'group': g} if g else {})})


def conflict(res, name, why):
    g = RESOURCES[res]['group']
    qual = res + ('.' + g if g else '')
    return ApiError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": %s'
                    % (qual, name, why), {'name': name, 'kind': res})


# ---- selectors ----

def field_value(obj, path):
    v = obj
    for part in path.split('.'):
        if not isinstance(v, dict) or part not in v:
            return ''
        v = v[part]
    if v is None:
        return ''
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (dict, list)):
        return dumps(v)
    return str(v)


def parse_field_selector(sel, res):
    terms = []
    if not sel:
        return terms
    for t in sel.split(','):
        t = t.strip()
        if not t:
            continue
        for op in ('!=', '==', '='):
            i = t.find(op)
            if i > 0:
                field, value = t[:i].strip(), t[i + len(op):].strip()
                break
        else:
            raise ApiError(400, 'BadRequest',
                           'invalid field selector: %r: no operator' % t)
        if field not in RESOURCES[res]['fields']:
            raise ApiError(400, 'BadRequest',
                           'field label not supported: %s' % field)
        terms.append((field, op != '!=', value))
    return terms


def split_top(s):
    out, depth, cur = [], 0, ''
    for ch in s:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == ',' and depth == 0:
            out.append(cur)
            cur = ''
        else:
            cur += ch
    out.append(cur)
    return [x.strip() for x in out if x.strip()]


def parse_label_selector(sel):
    terms = []
    if not sel:
        return terms
    for t in split_top(sel):
        words = t.split()
        if len(words) >= 2 and words[1] in ('in', 'notin'):
            vals = t.split(None, 2)[2].strip()
            if not (vals.startswith('(') and vals.endswith(')')):
                raise ApiError(400, 'BadRequest', 'invalid label selector: %r' % t)
            vs = {v.strip() for v in vals[1:-1].split(',') if v.strip()}
            terms.append((words[0], words[1], vs))
        elif t.startswith('!'):
            terms.append((t[1:].strip(), '!', None))
        else:
            for op in ('!=', '==', '='):
                i = t.find(op)
                if i > 0:
                    terms.append((t[:i].strip(), '=' if op != '!=' else '!=',
                                  t[i + len(op):].strip()))
                    break
            else:
                terms.append((t, 'exists', None))
    return terms


def matches(obj, fsel, lsel):
    for field, eq, value in fsel:
        if (field_value(obj, field) == value) != eq:
            return False
    labels = (obj.get('metadata') or {}).get('labels') or {}
    for key, op, value in lsel:
        have = key in labels
        v = labels.get(key)
        if op == '=' and v != value:
            return False
        if op == '!=' and have and v == value:
            return False
        if op == 'exists' and not have:
            return False
        if op == '!' and have:
            return False
        if op == 'in' and (not have or v not in value):
            return False
        if op == 'notin' and have and v in value:
            return False
    return True


# ---- patches ----

class PatchError(Exception):
    pass


def ptr_parts(ptr):
    if ptr == '':
        return []
    if not ptr.startswith('/'):
        raise PatchError('invalid JSON pointer %r' % ptr)
    return [p.replace('~1', '/').replace('~0', '~') for p in ptr[1:].split('/')]


def ptr_parent(doc, parts, ptr):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError('doc is missing path: "%s"' % ptr)
    return cur


def ptr_get(doc, ptr):
    parts = ptr_parts(ptr)
    if not parts:
        return doc
    parent = ptr_parent(doc, parts, ptr)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError('doc is missing path: "%s"' % ptr)


def ptr_add(doc, ptr, value, replace=False):
    parts = ptr_parts(ptr)
    if not parts:
        return value
    parent = ptr_parent(doc, parts, ptr)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError('replace operation does not apply: doc is missing key: %s' % ptr)
        parent[last] = value
    elif isinstance(parent, list):
        if last == '-' and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise PatchError('index out of range: %s' % ptr)
    else:
        raise PatchError('doc is missing path: "%s"' % ptr)
    return doc


def ptr_remove(doc, ptr):
    parts = ptr_parts(ptr)
    if not parts:
        raise PatchError('cannot remove the root')
    parent = ptr_parent(doc, parts, ptr)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError('remove operation does not apply: doc is missing path: "%s"' % ptr)


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ApiError(400, 'BadRequest', 'json patch must be an array of operations')
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or 'op' not in op or 'path' not in op:
            raise ApiError(400, 'BadRequest', 'invalid json patch operation: %r' % (op,))
        kind, path = op['op'], op['path']
        if kind in ('add', 'replace', 'test') and 'value' not in op:
            raise PatchError('%s operation requires a value' % kind)
        if kind == 'add':
            doc = ptr_add(doc, path, copy.deepcopy(op['value']))
        elif kind == 'replace':
            doc = ptr_add(doc, path, copy.deepcopy(op['value']), replace=True)
        elif kind == 'remove':
            ptr_remove(doc, path)
        elif kind == 'test':
            if ptr_get(doc, path) != op['value']:
                raise PatchError('testing value %s failed' % path)
        elif kind in ('move', 'copy'):
            if 'from' not in op:
                raise PatchError('%s operation requires from' % kind)
            v = ptr_remove(doc, op['from']) if kind == 'move' \
                else copy.deepcopy(ptr_get(doc, op['from']))
            doc = ptr_add(doc, path, v)
        else:
            raise ApiError(400, 'BadRequest', 'unknown json patch operation %r' % kind)
    return doc


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strip_directives(v):
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items() if not k.startswith('$')}
    if isinstance(v, list):
        return [strip_directives(x) for x in v]
    return v


def strategic_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get('$patch') == 'replace':
        return strip_directives(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith('$'):
            continue  # $patch, $setElementOrder/..., $retainKeys, ...
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = strategic_patch(out.get(k), v)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(out.get(k), list):
            key, cur = MERGE_KEYS[k], out[k]
            for el in v:
                if not isinstance(el, dict) or key not in el:
                    cur.append(strip_directives(el))
                    continue
                idx = next((i for i, e in enumerate(cur)
                            if isinstance(e, dict) and e.get(key) == el[key]), None)
                if el.get('$patch') == 'delete':
                    if idx is not None:
                        cur.pop(idx)
                elif idx is None:
                    cur.append(strip_directives(el))
                else:
                    cur[idx] = strategic_patch(cur[idx], el)
        else:
            out[k] = strip_directives(v)
    return out


# ---- the store ----

class Watch:
    def __init__(self, handler, res, ns, fsel, lsel, path):
        self.handler = handler
        self.res, self.ns, self.fsel, self.lsel, self.path = res, ns, fsel, lsel, path
        self.actions = []
        self.rv = 0


class Store:
    def __init__(self, history):
        self.cond = threading.Condition()
        self.rv = 0
        self.objs = {r: {} for r in RESOURCES}
        self.history = deque()
        self.history_max = history
        self.compacted = 0  # events up to here are forgotten
        self.watches = set()
        self.bookmark_interval = 1.0
        self.split = 0

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def record(self, res, etype, old, new):
        self.history.append((self.rv, res, etype, old, new))
        while len(self.history) > self.history_max:
            self.compacted = self.history.popleft()[0]
        self.cond.notify_all()

    def compact(self):
        # Like an etcd compaction followed by a write: every resourceVersion
        # handed out so far becomes too old to watch from.
        before = self.rv
        self.bump()
        self.history.clear()
        self.compacted = self.rv
        for w in self.watches:
            if w.rv == before:
                w.rv = self.rv  # caught up: it missed nothing
        self.cond.notify_all()

    @staticmethod
    def key(res, ns, name):
        return (ns if RESOURCES[res]['ns'] else '', name)

    def normalize_new(self, res, obj, ns):
        info = RESOURCES[res]
        if not isinstance(obj, dict):
            raise ApiError(400, 'BadRequest', 'the body is not a JSON object')
        obj = copy.deepcopy(obj)
        kind = obj.get('kind')
        if kind and kind != info['kind']:
            raise ApiError(400, 'BadRequest', 'kind %s does not match %s' % (kind, res))
        obj['kind'], obj['apiVersion'] = info['kind'], info['api']
        meta = obj.setdefault('metadata', {})
        if info['ns']:
            if meta.get('namespace') and ns and meta['namespace'] != ns:
                raise ApiError(400, 'BadRequest', 'the namespace of the provided object does '
                               'not match the namespace sent on the request')
            meta['namespace'] = ns or meta.get('namespace') or 'default'
        else:
            meta.pop('namespace', None)
        if not meta.get('name'):
            if meta.get('generateName'):
                meta['name'] = meta['generateName'] + ''.join(
                    random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            else:
                raise ApiError(422, 'Invalid', '%s "" is invalid: metadata.name: Required value'
                               ': name or generateName is required' % info['kind'])
        if res == 'pods':
            spec = obj.setdefault('spec', {})
            spec.setdefault('schedulerName', 'default-scheduler')
            obj.setdefault('status', {}).setdefault('phase', 'Pending')
        return obj

    def create(self, res, obj, ns=None):
        obj = self.normalize_new(res, obj, ns)
        meta = obj['metadata']
        k = self.key(res, meta.get('namespace'), meta['name'])
        if k in self.objs[res]:
            raise ApiError(409, 'AlreadyExists', '%s "%s" already exists' % (res, meta['name']),
                           {'name': meta['name'], 'kind': res})
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = now_rfc3339()
        meta['resourceVersion'] = self.bump()
        self.objs[res][k] = obj
        self.record(res, 'ADDED', None, obj)
        return obj

    def get(self, res, ns, name):
        o = self.objs[res].get(self.key(res, ns, name))
        if o is None:
            raise not_found(res, name)
        return o

    def replace(self, res, ns, name, new, sub=None, check_rv=True):
        """Store new as the object; keep identity fields; 409 on a stale resourceVersion."""
        old = self.get(res, ns, name)
        if not isinstance(new, dict):
            raise ApiError(400, 'BadRequest', 'the body is not a JSON object')
        new = copy.deepcopy(new)
        if not isinstance(new.get('metadata'), dict):
            new['metadata'] = {}
        meta = new['metadata']
        if meta.get('name', name) != name:
            raise ApiError(400, 'BadRequest', 'the name of the object (%s) does not match the '
                           'name on the URL (%s)' % (meta.get('name'), name))
        want = meta.get('resourceVersion')
        if check_rv and want and want != old['metadata']['resourceVersion']:
            raise conflict(res, name, 'the object has been modified; please apply your '
                           'changes to the latest version and try again')
        if sub == 'status':
            merged = copy.deepcopy(old)
            merged['status'] = new.get('status', {})
            new = merged
        elif res in ('pods', 'nodes') and 'status' in old:
            new['status'] = copy.deepcopy(old['status'])
        return self.put(res, ns, name, new)

    def put(self, res, ns, name, new):
        """Store new over the existing object (identity fields kept); MODIFIED if it changed."""
        old = self.get(res, ns, name)
        om, nm = old['metadata'], new['metadata']
        new['kind'], new['apiVersion'] = old['kind'], old['apiVersion']
        for f in ('name', 'namespace', 'uid', 'creationTimestamp'):
            if f in om:
                nm[f] = om[f]
            else:
                nm.pop(f, None)
        nm['resourceVersion'] = om['resourceVersion']
        if new == old:
            return old  # a no-op update: no new resourceVersion, no event
        nm['resourceVersion'] = self.bump()
        self.objs[res][self.key(res, ns, name)] = new
        self.record(res, 'MODIFIED', old, new)
        return new

    def delete(self, res, ns, name):
        old = self.get(res, ns, name)
        del self.objs[res][self.key(res, ns, name)]
        gone = copy.deepcopy(old)
        gone['metadata']['resourceVersion'] = self.bump()
        self.record(res, 'DELETED', old, gone)
        return gone

    def items(self, res, ns, fsel, lsel):
        out = []
        for (ons, _), o in sorted(self.objs[res].items()):
            if ns and ons != ns:
                continue
            if matches(o, fsel, lsel):
                out.append(o)
        return out


def list_item(o):
    o = copy.deepcopy(o)
    o.pop('kind', None)
    o.pop('apiVersion', None)
    return o


def watch_event(w, res, etype, old, new):
    """The event this watch sees for one change, after selector transitions, or None."""
    if res != w.res:
        return None
    obj = new if new is not None else old
    ns = obj['metadata'].get('namespace', '')
    if w.ns and ns != w.ns:
        return None
    if etype == 'ADDED':
        return ('ADDED', new) if matches(new, w.fsel, w.lsel) else None
    if etype == 'DELETED':
        return ('DELETED', new) if matches(old, w.fsel, w.lsel) else None
    om, nm = matches(old, w.fsel, w.lsel), matches(new, w.fsel, w.lsel)
    if om and nm:
        return ('MODIFIED', new)
    if nm:
        return ('ADDED', new)
    if om:
        return ('DELETED', new)
    return None


# ---- HTTP ----

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, opts):
        super().__init__(addr, Handler)
        self.opts = opts
        self.store = Store(opts.history)
        self.store.bookmark_interval = opts.bookmark_interval
        self.tokens = set(opts.token or [])
        self.fail = {'count': 0}
        self.requests = []
        self.conns = set()
        self.conns_lock = threading.Lock()
        self.ssl_ctx = None
        self.log = open(opts.log, 'a') if opts.log else None
        if opts.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
            if opts.client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(opts.client_ca)
            self.ssl_ctx = ctx

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_ctx:
            # Handshake in the connection's thread, not the accept loop.
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # clients vanish mid-stream on purpose in these tests

    def drop_all(self, keep=None):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            if c is not keep:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'apiserver-double/1'

    def setup(self):
        # Headers and body go out in separate writes: without this, each
        # answer on a kept-alive connection waits for the client's delayed ACK.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.request)

    def finish(self):
        with self.server.conns_lock:
            self.server.conns.discard(self.request)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):
        if self.server.log:
            self.server.log.write('%s %s\n' % (time.strftime('%H:%M:%S'), fmt % args))
            self.server.log.flush()

    # -- plumbing --

    def read_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            data = b''
            while True:
                n = int(self.rfile.readline().split(b';')[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def log_entry(self, code):
        # Logged before the answer goes out, so a client that got its answer
        # always finds its request in /_test/requests.
        e, self.entry = self.entry, None
        if e is not None:
            e['status'] = code
            with self.server.store.cond:
                self.server.requests.append(e)

    def send_json(self, code, obj):
        body = dumps(obj).encode()
        self.log_entry(code)
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.status_sent = code

    def chunk(self, data):
        split = self.server.store.split
        if split and len(data) > split:
            for i in range(0, len(data), split):
                piece = data[i:i + split]
                self.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
                self.wfile.flush()
                time.sleep(0.002)
        elif data:
            self.wfile.write(b'%x\r\n' % len(data) + data + b'\r\n')
            self.wfile.flush()

    def abort(self):
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self):
        self.dispatch('GET')

    def do_POST(self):
        self.dispatch('POST')

    def do_PUT(self):
        self.dispatch('PUT')

    def do_PATCH(self):
        self.dispatch('PATCH')

    def do_DELETE(self):
        self.dispatch('DELETE')

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        self.q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query,
                                                             keep_blank_values=True).items()}
        self.status_sent = None
        self.entry = None
        raw = self.read_body()
        body = None
        path = url.path
        if path.startswith('/_test/'):
            try:
                body = json.loads(raw) if raw else {}
                self.control(method, path, body)
            except (ValueError, KeyError, TypeError) as e:
                self.send_json(400, {'ok': False, 'error': str(e)})
            return
        auth = self.headers.get('Authorization', '')
        token = auth[7:] if auth.startswith('Bearer ') else None
        self.entry = entry = {'method': method, 'path': path, 'query': url.query,
                              'content_type': self.headers.get('Content-Type'), 'body': None,
                              'auth': token, 'status': None}
        try:
            if raw:
                try:
                    body = json.loads(raw)
                    entry['body'] = body
                except ValueError:
                    raise ApiError(400, 'BadRequest', 'the body is not valid JSON')
            if self.server.tokens and token not in self.server.tokens:
                raise ApiError(401, 'Unauthorized', 'Unauthorized')
            with self.server.store.cond:
                f = self.server.fail
                if f['count'] > 0 and f.get('match', '') in path:
                    f['count'] -= 1
                    raise ApiError(f.get('code', 500), 'InternalError',
                                   'Internal error occurred: injected failure')
            self.api(method, path, body)
        except ApiError as e:
            self.send_json(e.code, e.body)
        finally:
            self.log_entry(self.status_sent)

    # -- the API --

    def route(self, path):
        """(resource, namespace, name, subresource, watch) or raise 404."""
        if path in ('/healthz', '/readyz', '/livez', '/version'):
            return (path, None, None, None, False)
        for group, prefix in GROUP_PREFIX.items():
            if path == prefix or path.startswith(prefix + '/'):
                parts = [urllib.parse.unquote(p) for p in path[len(prefix):].split('/') if p]
                break
        else:
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        watch = False
        if parts and parts[0] == 'watch':
            watch, parts = True, parts[1:]
        ns = None
        if len(parts) >= 3 and parts[0] == 'namespaces':
            ns, parts = parts[1], parts[2:]
        if not parts or parts[0] not in RESOURCES or RESOURCES[parts[0]]['group'] != group \
                or len(parts) > 3 or (ns is not None and not RESOURCES[parts[0]]['ns']):
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        res = parts[0]
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if sub and not ((res == 'pods' and sub in ('status', 'binding'))
                        or (res == 'nodes' and sub == 'status')):
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        return (res, ns, name, sub, watch)

    def api(self, method, path, body):
        res, ns, name, sub, watch = self.route(path)
        st = self.server.store
        if res in ('/healthz', '/readyz', '/livez'):
            data = b'ok'
            self.log_entry(200)
            self.send_response(200)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', '2')
            self.end_headers()
            self.wfile.write(data)
            self.status_sent = 200
            return
        if res == '/version':
            return self.send_json(200, {'major': '1', 'minor': '29', 'gitVersion': 'v1.29.0-double'})
        info = RESOURCES[res]
        if info['ns'] and name and ns is None:
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        if method == 'GET' and name is None:
            if watch or self.q.get('watch') in ('1', 'true'):
                return self.watch(res, ns, path)
            return self.list(res, ns)
        with st.cond:
            if method == 'GET':
                return self.send_json(200, st.get(res, ns, name))
            if method == 'POST' and name is None:
                return self.send_json(201, st.create(res, body, ns))
            if method == 'POST' and sub == 'binding':
                return self.bind(ns, name, body)
            if method == 'PUT' and name:
                return self.send_json(200, st.replace(res, ns, name, body, sub))
            if method == 'PATCH' and name and sub != 'binding':
                return self.send_json(200, self.patch(res, ns, name, sub, body))
            if method == 'DELETE' and name and not sub:
                return self.send_json(200, st.delete(res, ns, name))
        raise ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the '
                       'requested resource')

    def patch(self, res, ns, name, sub, body):
        st = self.server.store
        old = st.get(res, ns, name)
        ctype = (self.headers.get('Content-Type') or '').split(';')[0].strip()
        if body is None:
            raise ApiError(400, 'BadRequest', 'empty patch')
        try:
            if ctype == 'application/json-patch+json':
                new = json_patch(old, body)
            elif ctype == 'application/merge-patch+json':
                new = merge_patch(old, body)
            elif ctype == 'application/strategic-merge-patch+json':
                new = strategic_patch(old, body)
            else:
                raise ApiError(415, 'UnsupportedMediaType',
                               'the body of the request was in an unknown format - accepted '
                               'media types include: application/json-patch+json, '
                               'application/merge-patch+json, '
                               'application/strategic-merge-patch+json')
        except PatchError as e:
            raise ApiError(422, 'Invalid', 'the server rejected our request due to an error '
                           'in our request: %s' % e)
        if not isinstance(new, dict):
            raise ApiError(422, 'Invalid', 'the patch did not produce an object')
        return st.replace(res, ns, name, new, sub)

    def bind(self, ns, name, body):
        st = self.server.store
        pod = st.get('pods', ns, name)
        if not isinstance(body, dict) or body.get('kind', 'Binding') != 'Binding':
            raise ApiError(400, 'BadRequest', 'the body is not a Binding')
        target = (body.get('target') or {}).get('name')
        if not target:
            raise ApiError(422, 'Invalid', 'Binding.target.name: Required value')
        uid = (body.get('metadata') or {}).get('uid')
        if uid and uid != pod['metadata']['uid']:
            raise conflict('pods', name, 'Precondition failed: UID in precondition: %s, UID in '
                           'object meta: %s' % (uid, pod['metadata']['uid']))
        have = (pod.get('spec') or {}).get('nodeName')
        if have:
            raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on pods/binding "%s": '
                           'pod %s is already assigned to node "%s"' % (name, name, have),
                           {'name': name, 'kind': 'pods/binding'})
        new = copy.deepcopy(pod)
        new.setdefault('spec', {})['nodeName'] = target
        conds = [c for c in new.setdefault('status', {}).get('conditions', [])
                 if c.get('type') != 'PodScheduled']
        conds.append({'type': 'PodScheduled', 'status': 'True', 'lastProbeTime': None,
                      'lastTransitionTime': now_rfc3339()})
        new['status']['conditions'] = conds
        st.put('pods', ns, name, new)
        self.send_json(201, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
                             'status': 'Success', 'code': 201})

    def selectors(self, res):
        return (parse_field_selector(self.q.get('fieldSelector'), res),
                parse_label_selector(self.q.get('labelSelector')))

    def list(self, res, ns):
        st = self.server.store
        fsel, lsel = self.selectors(res)
        rv = self.q.get('resourceVersion')
        with st.cond:
            if rv and rv != '0':
                if not rv.isdigit():
                    raise ApiError(400, 'BadRequest', 'invalid resourceVersion %r' % rv)
                if int(rv) < st.compacted:
                    raise ApiError(410, 'Expired', 'too old resource version: %s (%d)'
                                   % (rv, st.compacted))
            items = [list_item(o) for o in st.items(res, ns, fsel, lsel)]
            out = {'kind': RESOURCES[res]['list'], 'apiVersion': RESOURCES[res]['api'],
                   'metadata': {'resourceVersion': str(st.rv)}, 'items': items}
        self.send_json(200, out)

    def watch(self, res, ns, path):
        st = self.server.store
        fsel, lsel = self.selectors(res)
        rv = self.q.get('resourceVersion', '')
        bookmarks = self.q.get('allowWatchBookmarks') in ('1', 'true')
        timeout = float(self.q.get('timeoutSeconds') or 1800)
        deadline = time.monotonic() + timeout
        w = Watch(self, res, ns, fsel, lsel, path)
        lines = []
        gone = None
        with st.cond:
            if rv in ('', '0'):
                for o in st.items(res, ns, fsel, lsel):
                    lines.append({'type': 'ADDED', 'object': o})
                w.rv = st.rv
            elif not rv.isdigit():
                raise ApiError(400, 'BadRequest', 'invalid resourceVersion %r' % rv)
            elif int(rv) < st.compacted:
                gone = int(rv)
            else:
                w.rv = int(rv)
            if gone is None:
                st.watches.add(w)
        self.log_entry(200)
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Cache-Control', 'no-cache, private')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        self.wfile.flush()
        self.status_sent = 200
        try:
            if gone is not None:
                self.send_gone(gone)
                return self.end_chunks()
            if lines:
                self.chunk(b''.join(dumps(e).encode() + b'\n' for e in lines))
            self.watch_loop(w, bookmarks, deadline)
        except OSError:
            self.close_connection = True
        finally:
            with st.cond:
                st.watches.discard(w)

    def send_gone(self, rv):
        st = self.server.store
        ev = {'type': 'ERROR', 'object': status_obj(
            410, 'Expired', 'too old resource version: %s (%d)' % (rv, st.compacted))}
        self.chunk(dumps(ev).encode() + b'\n')

    def end_chunks(self):
        self.wfile.write(b'0\r\n\r\n')
        self.wfile.flush()

    def client_gone(self):
        # A watching client sends nothing: readable means it closed (or broke
        # the protocol). Without this, dead watches linger until a write fails.
        try:
            r, _, _ = select.select([self.request], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def bookmark(self, w):
        info = RESOURCES[w.res]
        return {'type': 'BOOKMARK', 'object': {'kind': info['kind'], 'apiVersion': info['api'],
                                               'metadata': {'resourceVersion': str(w.rv)}}}

    def watch_loop(self, w, bookmarks, deadline):
        st = self.server.store
        last_bm = time.monotonic()
        while True:
            with st.cond:
                while True:
                    now = time.monotonic()
                    # The interval may change under us (/_test/bookmarks).
                    bm_due = bookmarks and st.bookmark_interval > 0 and \
                        now >= last_bm + st.bookmark_interval
                    if w.actions or st.rv > w.rv or now >= deadline or bm_due:
                        break
                    wake = deadline
                    if bookmarks and st.bookmark_interval > 0:
                        wake = min(wake, last_bm + st.bookmark_interval)
                    st.cond.wait(min(0.2, max(0.001, wake - now)))
                    if self.client_gone():
                        self.close_connection = True
                        return
                actions, w.actions = w.actions, []
                events = []
                if st.rv > w.rv:
                    if w.rv < st.compacted:
                        actions.append(('gone', None))
                    else:
                        for (rv, res, etype, old, new) in st.history:
                            if rv > w.rv:
                                e = watch_event(w, res, etype, old, new)
                                if e:
                                    events.append({'type': e[0], 'object': e[1]})
                        w.rv = st.rv
                bm = None
                if bm_due:
                    bm = self.bookmark(w)
                    last_bm = now
            for what, data in actions:
                if what == 'kill':
                    return self.abort()
                if what == 'gone':
                    self.send_gone(w.rv)
                    return self.end_chunks()
                if what == 'malformed':
                    self.chunk(b'{"type":"ADDED","object":{"kind":"Pod",,"metadata":\n'
                               + dumps(self.bookmark(w)).encode() + b'\n')
                if what == 'truncate':
                    line = dumps(events[0] if events else self.bookmark(w)).encode()
                    self.chunk(line[:len(line) // 2])
                    time.sleep(0.05)
                    return self.abort()
                if what == 'raw':
                    self.chunk(data.encode())
            if events:
                self.chunk(b''.join(dumps(e).encode() + b'\n' for e in events))
            if bm:
                self.chunk(dumps(bm).encode() + b'\n')
            if time.monotonic() >= deadline:
                return self.end_chunks()

    # -- test control --

    def control(self, method, path, body):
        srv, st = self.server, self.server.store
        parts = [p for p in path.split('/') if p][1:]
        what = parts[0] if parts else ''
        out = {'ok': True}
        with st.cond:
            if what == 'objects' and method == 'POST':
                for res in ('nodes', 'pods', 'leases', 'events'):
                    for o in body.get(res, []):
                        meta = o.get('metadata', {})
                        k = st.key(res, meta.get('namespace') or 'default', meta.get('name'))
                        if k in st.objs[res]:
                            st.delete(res, k[0], k[1])
                        st.create(res, o)
            elif what == 'objects' and method == 'DELETE' and len(parts) >= 3:
                res = parts[1]
                ns, name = (parts[2], parts[3]) if RESOURCES[res]['ns'] else (None, parts[2])
                try:
                    st.delete(res, ns, name)
                except ApiError as e:
                    return self.send_json(e.code, e.body)
            elif what == 'restart':
                for w in st.watches:
                    w.actions.append(('kill', None))
                if body.get('compact'):
                    st.compact()
                st.cond.notify_all()
                out['watches'] = len(st.watches)
            elif what == 'compact':
                st.compact()
            elif what == 'inject':
                kind = body['what']
                if kind not in ('malformed', 'truncate', 'raw', 'gone'):
                    raise ValueError('unknown injection %r' % kind)
                for w in st.watches:
                    w.actions.append((kind, body.get('data', '')))
                st.cond.notify_all()
                out['watches'] = len(st.watches)
            elif what == 'fail':
                srv.fail = {'count': int(body.get('count', 1)), 'code': int(body.get('code', 500)),
                            'match': body.get('match', '')}
            elif what == 'split':
                st.split = int(body.get('bytes', 0))
            elif what == 'tokens':
                srv.tokens = set(body.get('tokens', []))
            elif what == 'bookmarks':
                st.bookmark_interval = float(body.get('interval', 1.0))
                st.cond.notify_all()
            elif what == 'watches':
                out['open'] = len(st.watches)
                out['watches'] = [{'path': w.path, 'rv': str(w.rv)} for w in st.watches]
            elif what == 'requests' and method == 'GET':
                out['requests'] = list(srv.requests)
            elif what == 'requests' and method == 'DELETE':
                srv.requests.clear()
            elif what == 'state':
                out['resourceVersion'] = str(st.rv)
                for res in RESOURCES:
                    out[res] = [o for _, o in sorted(st.objs[res].items())]
            else:
                return self.send_json(404, {'ok': False, 'error': 'no such control endpoint'})
        if what == 'restart':
            srv.drop_all(keep=self.request)
        self.send_json(200, out)


def main():
    ap = argparse.ArgumentParser(description='Kubernetes API-server test double')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    ap.add_argument('--state')
    ap.add_argument('--token', action='append')
    ap.add_argument('--tls-cert')
    ap.add_argument('--tls-key')
    ap.add_argument('--client-ca')
    ap.add_argument('--history', type=int, default=1000)
    ap.add_argument('--bookmark-interval', type=float, default=1.0)
    ap.add_argument('--log')
    opts = ap.parse_args()
    if bool(opts.tls_cert) != bool(opts.tls_key) or (opts.client_ca and not opts.tls_cert):
        ap.error('--tls-cert and --tls-key go together; --client-ca needs them')

    srv = Server(('127.0.0.1', opts.port), opts)
    if opts.state:
        with open(opts.state) as f:
            seed = json.load(f)
        with srv.store.cond:
            for res in ('nodes', 'pods', 'leases', 'events'):
                for o in seed.get(res, []):
                    srv.store.create(res, o)
    port = srv.server_address[1]
    if opts.port_file:
        tmp = opts.port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % port)
        os.rename(tmp, opts.port_file)
    sys.stdout.write('%d\n' % port)
    sys.stdout.flush()

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever(poll_interval=0.1)
    srv.drop_all()
    srv.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
