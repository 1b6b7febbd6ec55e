/**
 * Per-sender summaries of a capture, for `mccache decode FILE`: what each sender (by its 64-bit
 * sender id) put on the wire. Fed every decoded McCache v1 datagram in capture order.
 *
 * - `messages`: messages by op mnemonic. A sequenced message is counted once however many copies
 *   (retransmissions) were captured; a fragmented one once it is reassembled. Sealed datagrams
 *   count as their message when the decoder opened them with its key (`decrypted`), else under
 *   `sealed` (and `notOpened` when the key did not open them).
 * - `gaps`: sequence numbers skipped between the sequenced datagrams seen (from the first seen
 *   on), as ranges; a gap later filled by a retransmission is still listed.
 * - `naks`: NAK messages the sender sent; `retransmissions`: datagrams with the retransmission flag.
 * - `reassembled`: fragmented messages completed from their fragments.
 * - `keys`: the cache keys of its PUT and DEL messages and BAT writes, in order of sequence number first seen.
 */
import { decodeMessage } from '../codec/decode';
import { Reassembler } from '../codec/reassembler';
import { FLAG_ENCRYPTED, FLAG_RETRANSMISSION, MNEMONICS, isSequenced, type Message, type OpName, type Packet, type SeqRange } from '../codec/packet';

export interface KeyRecord { op: 'put' | 'delete'; cache: string; key: string; seq: number }

export interface SenderSummary {
  /** Decimal, as in the canonical JSON. */
  senderId: string;
  /** Source addresses seen ("ip:port"). */
  sources: string[];
  datagrams: number;
  messages: Record<string, number>;
  /** Sealed messages not opened (no key, or the key did not open them). */
  sealed: number;
  /** Sealed datagrams opened with the decoder's key. */
  decrypted: number;
  /** Sealed datagrams the decoder's key did not open (authentication failed, other key id). */
  notOpened: number;
  gaps: SeqRange[];
  naks: number;
  retransmissions: number;
  reassembled: number;
  keys: KeyRecord[];
}

export interface Reassembled { senderId: bigint; msgSeq: number; op: OpName; bytes: Uint8Array; message?: Message; error?: string }

interface State {
  summary: SenderSummary;
  highest: number | undefined;
  /** Sequenced messages already counted. */
  counted: Set<number>;
}

export class Summarizer {
  readonly #senders = new Map<bigint, State>();
  readonly #reassembler = new Reassembler({ timeout: 60_000 });

  /**
   * Counts one decoded datagram captured at `timeMs` from `source`. Returns the message it
   * completed when it was the last missing fragment of a fragmented plaintext message.
   * `opened` says what the decoder's key did with a sealed datagram: true, `packet` is the
   * decrypted one (runtime/cli/unseal.ts); false, it did not open; undefined, no key.
   */
  add(packet: Packet, source: string, timeMs: number, opened?: boolean): Reassembled | undefined {
    const h = packet.header;
    const st = this.#state(h.senderId);
    const s = st.summary;
    s.datagrams++;
    if (!s.sources.includes(source)) s.sources.push(source);
    if ((h.flags & FLAG_RETRANSMISSION) !== 0) s.retransmissions++;
    const sequenced = isSequenced(h.op);
    if (sequenced) {
      if (st.highest !== undefined && h.msgSeq > st.highest + 1) s.gaps.push({ first: st.highest + 1, last: h.msgSeq - 1 });
      if (st.highest === undefined || h.msgSeq > st.highest) st.highest = h.msgSeq;
      if (st.counted.has(h.msgSeq)) return undefined; // a copy of a message already counted
    }
    if ((h.flags & FLAG_ENCRYPTED) !== 0) {
      if (opened === true) {
        s.decrypted++;
      } else {
        if (opened === false) s.notOpened++;
        if (h.fragIndex === 0) s.sealed++;
        return undefined;
      }
    }
    if (packet.message) {
      this.#count(st, h.op, h.msgSeq, packet.message);
      return undefined;
    }
    const r = this.#reassembler.push(timeMs, packet);
    if (r.kind !== 'complete') return undefined;
    s.reassembled++;
    const done: Reassembled = { senderId: h.senderId, msgSeq: h.msgSeq, op: h.op, bytes: r.message };
    try {
      done.message = decodeMessage(h.op, r.message);
      this.#count(st, h.op, h.msgSeq, done.message);
    } catch (err) {
      done.error = String((err as { code?: unknown }).code ?? (err as Error).message);
    }
    return done;
  }

  /** Summaries in order of each sender's first datagram. */
  summaries(): SenderSummary[] {
    return [...this.#senders.values()].map((st) => st.summary);
  }

  #state(id: bigint): State {
    let st = this.#senders.get(id);
    if (st === undefined) {
      st = {
        summary: {
          senderId: id.toString(10), sources: [], datagrams: 0, messages: {}, sealed: 0, decrypted: 0, notOpened: 0,
          gaps: [], naks: 0, retransmissions: 0, reassembled: 0, keys: [],
        },
        highest: undefined, counted: new Set(),
      };
      this.#senders.set(id, st);
    }
    return st;
  }

  #count(st: State, op: OpName, seq: number, m: Message): void {
    if (isSequenced(op)) st.counted.add(seq);
    const s = st.summary;
    const mn = MNEMONICS[op];
    s.messages[mn] = (s.messages[mn] ?? 0) + 1;
    if (m.op === 'nak') s.naks++;
    if (m.op === 'put' || m.op === 'delete') s.keys.push({ op: m.op, cache: m.cache, key: m.key, seq });
    if (m.op === 'batch') for (const w of m.writes) s.keys.push({ op: w.kind === 'value' ? 'put' : 'delete', cache: m.cache, key: w.key, seq });
  }
}

/** Human-readable lines of one summary. */
export function summaryLines(s: SenderSummary): string[] {
  const id = BigInt(s.senderId);
  const msgs = Object.entries(s.messages).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const gaps = s.gaps.length === 0 ? 'none' : s.gaps.map((g) => (g.first === g.last ? String(g.first) : `${g.first}-${g.last}`)).join(', ');
  const lines = [
    `sender ${s.senderId} (0x${id.toString(16).padStart(16, '0')}) from ${s.sources.join(', ')}`,
    `  datagrams: ${s.datagrams}${s.decrypted ? `, decrypted: ${s.decrypted}` : ''}${s.notOpened ? `, not opened: ${s.notOpened}` : ''}`
      + `${s.sealed ? `, sealed messages: ${s.sealed}` : ''}`,
    `  messages: ${msgs}`,
    `  sequence gaps: ${gaps}`,
    `  NAKs sent: ${s.naks}, retransmissions: ${s.retransmissions}, messages reassembled: ${s.reassembled}`,
  ];
  if (s.keys.length > 0) {
    lines.push(`  keys: ${s.keys.map((k) => `${MNEMONICS[k.op]} ${JSON.stringify(k.cache)}/${JSON.stringify(k.key)}`).join(', ')}`);
  }
  return lines;
}
