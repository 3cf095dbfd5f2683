// Reading an HTTP/1.1 response off the wire (RFC 9112): the head (status line and header fields), how its body
// is framed, and the chunked transfer coding. Pure functions and one small state machine, so that
// http1-agent.ts can feed them bytes as a socket delivers them, split anywhere.

/** A response head larger than this is refused (undici and Node's http allow 16 KiB; object stores send more). */
export const MAX_HEAD_BYTES = 64 * 1024;

/** A chunk-size line (hex size and extensions) or one trailer line longer than this is refused. */
const MAX_CHUNK_LINE_BYTES = 4096;

/** Trailer fields after the last chunk, all together, at most this many bytes. */
const MAX_TRAILER_BYTES = 16 * 1024;

/** tchar of RFC 9110 §5.6.2: what a field name is made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Field values may hold visible characters, spaces, tabs and obs-text; never CR, LF or NUL. */
const INVALID_VALUE_CHAR = /[\0\r\n]/;

export interface ResponseHead {
  statusCode: number;
  statusText: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /** Lower-case names; a field that came more than once is an array of its values, in order. */
  headers: Record<string, string | string[]>;
}

/** How a response's body ends. */
export type BodyFraming =
  { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

/** A response the agent cannot read: the connection is not used again. */
export class ResponseParseError extends Error {
  readonly code = 'HTTP1_PARSE';
  constructor(message: string) {
    super(`malformed HTTP response: ${message}`);
    this.name = 'ResponseParseError';
  }
}

/**
 * Parses a response head: `text` is everything before the blank line that ends it, decoded as latin1 (field
 * values are octets; obs-text survives the round trip).
 */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const statusLine = lines[0] ?? '';
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) throw new ResponseParseError(`bad status line "${printable(statusLine)}"`);
  const headers: Record<string, string | string[]> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // obs-fold (RFC 9112 §5.2): a client may replace it with a space; undici and Node refuse it. So do we.
      throw new ResponseParseError('folded header line');
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw new ResponseParseError(`bad header line "${printable(line)}"`);
    const value = line.slice(colon + 1).trim();
    if (INVALID_VALUE_CHAR.test(value)) throw new ResponseParseError(`bad value of header ${name}`);
    const key = name.toLowerCase();
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[key] = [prev, value];
  }
  return {
    statusCode: Number(m[2]),
    statusText: m[3] ?? '',
    minorVersion: Number(m[1]),
    headers,
  };
}

/** RFC 9112 §6.3: how the body of this answer to `method` ends. */
export function bodyFraming(method: string, head: ResponseHead): BodyFraming {
  const status = head.statusCode;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) {
    const codings = (Array.isArray(te) ? te.join(',') : te)
      .split(',')
      .map((c) => c.trim().toLowerCase())
      .filter((c) => c !== '');
    // Chunked must be the last coding; any other last coding runs to the close. A Content-Length beside
    // Transfer-Encoding is ignored (§6.3 item 3), and the connection is not reused (the agent decides that).
    return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  const cl = head.headers['content-length'];
  if (cl !== undefined) {
    const values = (Array.isArray(cl) ? cl.join(',') : cl).split(',').map((v) => v.trim());
    if (!values.every((v) => /^\d+$/.test(v)) || new Set(values).size !== 1) {
      throw new ResponseParseError(`bad Content-Length "${printable(String(cl))}"`);
    }
    const length = Number(values[0]);
    if (!Number.isSafeInteger(length)) throw new ResponseParseError(`Content-Length ${values[0]} too large`);
    return { kind: 'length', length };
  }
  return { kind: 'close' };
}

/** Whether the connection may carry another request after this response (RFC 9112 §9.3). */
export function keepsAlive(head: ResponseHead): boolean {
  const connection = head.headers['connection'];
  const tokens = (Array.isArray(connection) ? connection.join(',') : (connection ?? ''))
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  if (tokens.includes('close')) return false;
  return head.minorVersion === 1 || tokens.includes('keep-alive');
}

/** The idle time the server announced in `Keep-Alive: timeout=N`, in ms; undefined when it named none. */
export function keepAliveHintMs(head: ResponseHead): number | undefined {
  const value = head.headers['keep-alive'];
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(Array.isArray(value) ? value.join(',') : (value ?? ''));
  return m ? Number(m[1]) * 1000 : undefined;
}

const enum ChunkState {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

/**
 * The chunked transfer coding, decoded as bytes arrive: `feed` hands out the data bytes as views of the buffer it
 * was given (never copied) and says when the last chunk and the trailer section have been read.
 */
export class ChunkedDecoder {
  private state = ChunkState.Size;
  /** Bytes of the current size or trailer line so far (lines may be split across reads). */
  private line = '';
  private dataLeft = 0;
  private trailerBytes = 0;
  /** After a chunk's data: the CR (optional) and LF still to come. */
  private sawCr = false;

  get done(): boolean {
    return this.state === ChunkState.Done;
  }

  /**
   * Decodes `buf[start, end)`; each run of data bytes goes to `onData` as a view. Returns the offset where the
   * body ended (the bytes after it belong to nobody), or `end` when more is needed.
   */
  feed(buf: Buffer, start: number, end: number, onData: (view: Buffer) => void): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case ChunkState.Data: {
          const n = Math.min(this.dataLeft, end - i);
          onData(buf.subarray(i, i + n));
          i += n;
          this.dataLeft -= n;
          if (this.dataLeft === 0) {
            this.state = ChunkState.DataEnd;
            this.sawCr = false;
          }
          break;
        }
        case ChunkState.DataEnd: {
          const c = buf[i++]!;
          if (c === 0x0d && !this.sawCr) this.sawCr = true;
          else if (c === 0x0a) this.state = ChunkState.Size;
          else throw new ResponseParseError('chunk data not followed by CRLF');
          break;
        }
        case ChunkState.Size:
        case ChunkState.Trailer: {
          const lf = buf.indexOf(0x0a, i);
          const stop = lf === -1 || lf >= end ? end : lf;
          this.line += buf.toString('latin1', i, stop);
          if (this.line.length > MAX_CHUNK_LINE_BYTES) throw new ResponseParseError('chunk line too long');
          i = stop;
          if (stop === end) break;
          i++; // the LF
          const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.state === ChunkState.Size) this.sizeLine(line);
          else if (line === '') {
            this.state = ChunkState.Done;
            return i;
          } else {
            this.trailerBytes += line.length + 2;
            if (this.trailerBytes > MAX_TRAILER_BYTES)
              throw new ResponseParseError('trailer section too large');
          }
          break;
        }
        case ChunkState.Done:
          return i;
      }
    }
    return end;
  }

  private sizeLine(line: string): void {
    // chunk-size [ chunk-ext ]: the extensions are ignored, as every client does.
    const semi = line.indexOf(';');
    const size = (semi === -1 ? line : line.slice(0, semi)).trim();
    if (!/^[0-9a-fA-F]{1,13}$/.test(size))
      throw new ResponseParseError(`bad chunk size "${printable(line)}"`);
    const n = parseInt(size, 16);
    if (n === 0) this.state = ChunkState.Trailer;
    else {
      this.dataLeft = n;
      this.state = ChunkState.Data;
    }
  }
}

/** A line of a broken answer, safe to put in an error message. */
function printable(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}
