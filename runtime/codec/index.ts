/**
 * The wire codec's public API: decode (peer bytes -> typed packets), encode (typed -> bytes),
 * fragmentation and reassembly. The rest of McCache imports the codec from here only; the
 * generated parsers stay behind it (STYLE.md rule 1).
 */
export { decodePacket, decodeMessage, decodePythonV0Header, sniffProtocol, bitmapToIndexes, type PythonV0Header } from './decode';
export { encodePacket, encodeMessage, encodedMessageSize, indexesToBitmap } from './encode';
export {
  planFragments, maxMessageSize, fragmentMessage,
  type FragmentPlan, type PlanOptions, type FragmentOptions,
} from './fragment';
export {
  Reassembler,
  type ReassemblerOptions, type ReassemblerStats, type PushResult, type DropReason,
} from './reassembler';
export * from './packet';
export { ErrorCode, McCacheError, MalformedPacketError, MessageTooLargeError, type MalformedCode } from '../errors';
