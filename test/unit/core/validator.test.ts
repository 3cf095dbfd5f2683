import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  answerChanged,
  hasValidator,
  preconditionHeaders,
  statChanged,
  validatorOf,
} from '../../../src/core/validator.js';

const LM = 'Mon, 02 Jun 2025 10:00:00 GMT';

test('validatorOf reads ETag and Last-Modified in any case and ignores empty values', () => {
  assert.deepEqual(validatorOf({ ETag: ' "a" ', 'Last-Modified': LM, date: 'x' }), {
    etag: '"a"',
    lastModified: LM,
  });
  assert.deepEqual(validatorOf({ etag: '', 'content-type': 'x' }), {});
  assert.equal(hasValidator({}), false);
  assert.equal(hasValidator({ lastModified: LM }), true);
});

test('preconditionHeaders: If-Match for a strong ETag, else If-Unmodified-Since, else nothing', () => {
  assert.deepEqual(preconditionHeaders({ etag: '"a"', lastModified: LM }), { 'if-match': '"a"' });
  assert.deepEqual(preconditionHeaders({ etag: 'W/"a"', lastModified: LM }), { 'if-unmodified-since': LM });
  assert.deepEqual(preconditionHeaders({ etag: 'W/"a"' }), {});
  assert.deepEqual(preconditionHeaders({}), {});
});

test('answerChanged compares only what the answer carries; the ETag decides when both have one', () => {
  assert.equal(answerChanged({ etag: '"a"' }, { etag: '"a"' }), undefined);
  assert.equal(answerChanged({ etag: '"a"' }, { etag: 'W/"a"' }), undefined, 'weak comparison');
  assert.match(answerChanged({ etag: '"a"' }, { etag: '"b"' }) ?? '', /ETag "a" → "b"/);
  assert.equal(answerChanged({ etag: '"a"' }, {}), undefined, 'an answer without validators passes');
  assert.equal(
    answerChanged({ etag: '"a"', lastModified: LM }, { etag: '"a"', lastModified: 'x' }),
    undefined,
  );
  assert.match(
    answerChanged({ etag: '"a"', lastModified: LM }, { lastModified: 'Tue, 03 Jun 2025 10:00:00 GMT' }) ?? '',
    /Last-Modified/,
  );
  assert.equal(
    answerChanged({ lastModified: LM }, { lastModified: 'Monday, 02-Jun-25 10:00:00 GMT' }),
    undefined,
    'same date, other form',
  );
  assert.equal(answerChanged({}, { etag: '"b"' }), undefined, 'nothing recorded, nothing to compare');
});

test('statChanged: a validator that appears or goes away is a change; none on either side is not', () => {
  assert.equal(statChanged({}, {}), undefined);
  assert.equal(statChanged({ etag: '"a"' }, { etag: '"a"', lastModified: LM }), undefined);
  assert.match(statChanged({ etag: '"a"' }, {}) ?? '', /ETag "a" → \(none\)/);
  assert.match(statChanged({}, { etag: '"a"' }) ?? '', /ETag/);
  assert.match(statChanged({ lastModified: LM }, {}) ?? '', /Last-Modified/);
  assert.equal(statChanged({ lastModified: LM }, { lastModified: LM }), undefined);
  assert.match(statChanged({ etag: '"a"' }, { etag: '"b"' }) ?? '', /"a" → "b"/);
});
