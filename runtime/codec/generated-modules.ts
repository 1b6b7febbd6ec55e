/**
 * Typed handles on the generated parsers (generated/, never edited). The debug build has the
 * same classes, compiled so that `_read()` is manual and every object records `_debug`
 * offsets; we use it only to explain a failure and to print field trees.
 */
import { MccacheDatagram } from '../../generated/MccacheDatagram';
import { MccacheMessage } from '../../generated/MccacheMessage';
import { MccacheV0Header } from '../../generated/MccacheV0Header';
import { MccacheCommon } from '../../generated/MccacheCommon';
import * as debugDatagram from '../../generated/debug/MccacheDatagram';
import * as debugMessage from '../../generated/debug/MccacheMessage';
import * as debugV0 from '../../generated/debug/MccacheV0Header';
import * as debugCommon from '../../generated/debug/MccacheCommon';
import errorCodesJson = require('../../generated/error-codes.json');
import fieldsJson = require('../../generated/fields.json');

export { MccacheDatagram, MccacheMessage, MccacheV0Header, MccacheCommon };
export const Debug = {
  MccacheDatagram: debugDatagram.MccacheDatagram,
  MccacheMessage: debugMessage.MccacheMessage,
  MccacheV0Header: debugV0.MccacheV0Header,
  MccacheCommon: debugCommon.MccacheCommon,
};

export interface ErrorRule {
  spec: string;
  type: string;
  class: string;
  field: string;
  srcPath: string;
  code: string;
}
export const ERROR_RULES: readonly ErrorRule[] = errorCodesJson.rules;

export interface FieldType {
  spec: string;
  type: string;
  class: string;
  seq: Array<{ id: string; type: string }>;
}
/** Each type's seq fields in order with their wire types (generated/fields.json). */
export const FIELD_TYPES: readonly FieldType[] = fieldsJson.types as FieldType[];
