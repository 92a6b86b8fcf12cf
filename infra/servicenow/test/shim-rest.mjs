// sn_ws.RESTMessageV2 of the shim's server-side global scope: synchronous like the real one
// (each exchange runs http-sync-helper.mjs through execFileSync); through a MID server it only
// answers executeAsync() + waitForResponse(). Kept apart from shim.mjs, which wires it in.

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HELPER = join(dirname(fileURLToPath(import.meta.url)), 'http-sync-helper.mjs');

/** RESTMessageV2 of one instance: every exchange is recorded in inst.http. */
export function restMessageOf(inst) {
  // ---- RESTMessageV2 -------------------------------------------------------------------------
  class RESTResponseV2 {
    constructor(status, headers, body, error) { Object.assign(this, { _status: status, _headers: headers, _body: body, _error: error }); }
    getStatusCode() { return this._status; }
    getBody() { return this._body; }
    haveError() { return this._status === 0 || this._status >= 400; }
    getErrorMessage() { return this._error || (this._status >= 400 ? `HTTP ${this._status}` : null); }
    getErrorCode() { return this._error ? 1 : 0; }
    getHeader(name) { return this._headers[String(name).toLowerCase()] ?? null; }
    getHeaders() { return { ...this._headers }; }
  }
  /** The answer of executeAsync(): nothing can be read from it before waitForResponse(). */
  class RESTResponseAsync {
    constructor(exchange, run) { this._exchange = exchange; this._run = run; this._response = null; }
    waitForResponse(seconds) {
      if (!(Number(seconds) > 0)) throw new Error('waitForResponse: seconds must be positive');
      this._exchange.wait_seconds = Number(seconds);
      this._response = this._run();
    }
    _ready() {
      if (!this._response) throw new Error('RESTResponseV2 of executeAsync(): call waitForResponse(seconds) first');
      return this._response;
    }
    getStatusCode() { return this._ready().getStatusCode(); }
    getBody() { return this._ready().getBody(); }
    haveError() { return this._ready().haveError(); }
    getErrorMessage() { return this._ready().getErrorMessage(); }
    getErrorCode() { return this._ready().getErrorCode(); }
    getHeader(name) { return this._ready().getHeader(name); }
    getHeaders() { return this._ready().getHeaders(); }
  }
  class RESTMessageV2 {
    constructor(name, method) {
      if (name !== undefined || method !== undefined) throw new Error('RESTMessageV2 shim: only the no-argument form is used');
      this._headers = {};
      this._body = null;
      this._method = null;
      this._endpoint = null;
      this._timeout = null;
      this._mid = null;
    }
    setEndpoint(url) { this._endpoint = String(url); }
    setHttpMethod(method) { this._method = String(method).toUpperCase(); }
    setRequestHeader(name, value) { this._headers[String(name)] = String(value); }
    setRequestBody(body) { this._body = String(body); }
    setHttpTimeout(ms) { this._timeout = Number(ms); }
    setMIDServer(name) { this._mid = String(name); }
    setEccParameter() {}
    getRequestBody() { return this._body; }
    getEndpoint() { return this._endpoint; }
    _exchange(async) {
      if (!this._endpoint || !this._method) throw new Error('RESTMessageV2: endpoint and method are required');
      const exchange = { method: this._method, url: this._endpoint, headers: { ...this._headers }, body: this._body, timeout_ms: this._timeout, mid_server: this._mid, async };
      inst.http.push(exchange);
      return exchange;
    }
    _send(exchange) {
      const out = execFileSync(process.execPath, [HELPER, '--stdin'], { input: JSON.stringify(exchange), encoding: 'utf8', timeout: (this._timeout || 60000) + 5000 });
      const answer = JSON.parse(out);
      exchange.response = answer;
      if (answer.error) throw new Error(`Request failed: ${answer.error}`);
      return new RESTResponseV2(answer.status, answer.headers, answer.body, null);
    }
    execute() {
      if (this._mid) throw new Error('RESTMessageV2 shim: a message through a MID server is asynchronous: use executeAsync() and waitForResponse()');
      return this._send(this._exchange(false));
    }
    executeAsync() {
      const exchange = this._exchange(true);
      return new RESTResponseAsync(exchange, () => this._send(exchange));
    }
  }
  return RESTMessageV2;
}
