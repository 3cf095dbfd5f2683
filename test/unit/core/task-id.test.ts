import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  DEFAULT_FILTERED_QUERY_PARAMS,
  TASK_TYPE_NAMES,
  blobDigestFromUrl,
  isBlobUrl,
  normalizeUrl,
  persistentCacheTaskId,
  persistentTaskId,
  repositoryRevision,
  selectTaskId,
  taskIdFromBlobDigest,
  taskIdFromContent,
  taskIdFromUrl,
  type TaskIdSource,
} from '../../../src/core/task-id.js';
import { DfError } from '../../../src/core/errors.js';
import { loadClientVectors, type VectorEntry } from './client-vectors.js';

const vectors = loadClientVectors();

const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');
const orUndefined = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const isCode = (code: string) => (e: unknown) => e instanceof DfError && e.code === code;

// A Download as the generated message would carry it (repeated field always present).
function download(fields: Partial<TaskIdSource> & { url: string }): TaskIdSource {
  return { filteredQueryParams: [], ...fields };
}

test('default filtered query params are upstream’s list, in order, without duplicates', () => {
  assert.deepEqual([...DEFAULT_FILTERED_QUERY_PARAMS], vectors.default_filtered_query_params.ordered);
  assert.equal(new Set(DEFAULT_FILTERED_QUERY_PARAMS).size, DEFAULT_FILTERED_QUERY_PARAMS.length);
});

test('task type names match the proto enum', () => {
  const { note: _note, ...names } = vectors.task_type_names;
  assert.deepEqual({ ...TASK_TYPE_NAMES }, names);
});

for (const [i, v] of (vectors.task_id.vectors as VectorEntry[]).entries()) {
  test(`task_id vector ${i}: ${v.kind}`, () => {
    const input = v.inputs;
    if (v.sha256_input_parts) assert.equal(sha256Hex(v.sha256_input_parts.join('')), v.expected_id);
    switch (v.kind) {
      case 'TaskIDParameter::URLBased': {
        assert.ok(v.task_type_suffix in vectors.task_type_names);
        assert.equal(v.sha256_input_parts.at(-1), v.task_type_suffix);
        assert.equal(normalizeUrl(input.url, input.filtered_query_params), v.normalized_url);
        const params = {
          url: input.url,
          tag: orUndefined(input.tag),
          application: orUndefined(input.application),
          revision: orUndefined(input.revision),
          pieceLength: orUndefined(input.piece_length),
          filteredQueryParams: input.filtered_query_params,
        };
        assert.equal(taskIdFromUrl(params), v.expected_id);
        // The same id through the Download selection, with the revision carried as a Hugging Face revision.
        const d = download({
          url: input.url,
          tag: params.tag,
          application: params.application,
          pieceLength: params.pieceLength,
          filteredQueryParams: input.filtered_query_params,
          huggingFace: params.revision === undefined ? undefined : { revision: params.revision },
        });
        assert.equal(selectTaskId(d), v.expected_id);
        break;
      }
      case 'TaskIDParameter::Content':
        assert.equal(taskIdFromContent(input.content_for_calculating_task_id), v.expected_id);
        assert.equal(
          selectTaskId(
            download({
              url: 'https://example.com/x',
              contentForCalculatingTaskId: input.content_for_calculating_task_id,
            }),
          ),
          v.expected_id,
        );
        break;
      case 'TaskIDParameter::BlobDigestBased':
        assert.equal(taskIdFromBlobDigest(input.url), v.expected_id);
        assert.equal(
          selectTaskId(download({ url: input.url, enableTaskIdBasedBlobDigest: true })),
          v.expected_id,
        );
        break;
      default:
        assert.fail(`unknown task id vector kind ${v.kind}`);
    }
  });
}

test('selection rule: content first, then blob digest only when enabled, else URL based', () => {
  const blob = vectors.task_id.vectors.find(
    (v: VectorEntry) => v.kind === 'TaskIDParameter::BlobDigestBased',
  );
  const url: string = blob.inputs.url;
  // Content wins even over an enabled blob digest.
  assert.equal(
    selectTaskId(download({ url, enableTaskIdBasedBlobDigest: true, contentForCalculatingTaskId: 'abc' })),
    sha256Hex('abc'),
  );
  // An empty content string is still "set" (proto optional), so it is hashed.
  assert.equal(selectTaskId(download({ url, contentForCalculatingTaskId: '' })), sha256Hex(''));
  // Blob URL without the flag: URL based.
  assert.equal(selectTaskId(download({ url })), taskIdFromUrl({ url }));
  assert.equal(
    selectTaskId(download({ url, enableTaskIdBasedBlobDigest: false })),
    sha256Hex(`${url}STANDARD`),
  );
  // Flag without a blob URL: URL based.
  assert.equal(
    selectTaskId(download({ url: 'https://example.com/file', enableTaskIdBasedBlobDigest: true })),
    sha256Hex('https://example.com/fileSTANDARD'),
  );
  // A blob URL whose digest does not parse fails, as upstream's BlobDigestBased does.
  assert.throws(
    () =>
      selectTaskId(
        download({
          url: 'http://r.example.com/v2/repo/blobs/invalid-digest',
          enableTaskIdBasedBlobDigest: true,
        }),
      ),
    isCode('INVALID_ARGUMENT'),
  );
});

test('repository revision: first of hugging_face, model_scope, open_csg (should_get_repository_revision)', () => {
  assert.equal(repositoryRevision({ huggingFace: { revision: 'main' } }), 'main');
  assert.equal(repositoryRevision({ modelScope: { revision: 'master' } }), 'master');
  assert.equal(repositoryRevision({ openCsg: { revision: 'main' } }), 'main');
  assert.equal(repositoryRevision({}), undefined);
  assert.equal(repositoryRevision({ huggingFace: { revision: 'a' }, modelScope: { revision: 'b' } }), 'a');
  assert.equal(
    selectTaskId(download({ url: 'https://example.com', modelScope: { revision: 'v1.0' } })),
    sha256Hex('https://example.comv1.0STANDARD'),
  );
});

test('persistent_task_id vectors', () => {
  for (const v of vectors.persistent_task_id.vectors) {
    assert.equal(sha256Hex(v.sha256_input_parts.join('')), v.expected_id);
    assert.equal(persistentTaskId(v.inputs), v.expected_id);
  }
});

test('persistent_cache_task_id vectors', () => {
  for (const v of vectors.persistent_cache_task_id.vectors) {
    assert.equal(sha256Hex(v.sha256_input_parts.join('')), v.expected_id);
    const { inputs } = v;
    if (v.kind === 'PersistentCacheTaskIDParameter::Content') {
      assert.equal(persistentCacheTaskId({ content: inputs.content_for_calculating_task_id }), v.expected_id);
      continue;
    }
    assert.equal(v.kind, 'PersistentCacheTaskIDParameter::FileContentBased');
    const rest = {
      tag: orUndefined(inputs.tag),
      application: orUndefined(inputs.application),
      pieceLength: orUndefined(inputs.piece_length),
    };
    assert.equal(persistentCacheTaskId({ fileContent: inputs.file_content, ...rest }), v.expected_id);
    // Bytes and chunked bytes hash the same as the string.
    const bytes = Buffer.from(inputs.file_content);
    assert.equal(persistentCacheTaskId({ fileContent: bytes, ...rest }), v.expected_id);
    assert.equal(
      persistentCacheTaskId({ fileContent: [bytes.subarray(0, 5), bytes.subarray(5)], ...rest }),
      v.expected_id,
    );
  }
});

test('cross-implementation example: Rust normalisation (kept order, "/" path) is what we hash', () => {
  for (const note of vectors.cross_implementation_notes) {
    const ex = note.derived_example;
    if (!ex) continue;
    const normalized = normalizeUrl(ex.url, ex.filtered_query_params);
    assert.equal(`${normalized}STANDARD`, ex.rust_hashed_string);
    assert.equal(taskIdFromUrl({ url: ex.url, filteredQueryParams: ex.filtered_query_params }), ex.rust_id);
    assert.notEqual(ex.rust_id, ex.go_id);
  }
});

test('blob url extraction vectors (test_extract_from_blob_url)', () => {
  const { valid, invalid } = vectors.digests.blob_url_extraction;
  for (const v of valid) {
    assert.ok(isBlobUrl(v.url), v.url);
    const digest = blobDigestFromUrl(v.url);
    assert.ok(digest, v.url);
    if (v.algorithm !== null) assert.equal(digest.algorithm, v.algorithm);
    if (v.encoded !== null) assert.equal(digest.encoded, v.encoded);
  }
  for (const url of invalid) {
    assert.equal(blobDigestFromUrl(url), undefined, url);
    assert.throws(() => taskIdFromBlobDigest(url), isCode('INVALID_ARGUMENT'), url);
  }
  // Pattern matches but the digest is malformed: a blob URL with no usable digest.
  assert.ok(isBlobUrl('http://registry.example.com/v2/repo/blobs/invalid-digest'));
});

test('normalizeUrl follows WHATWG + form-urlencoding as the Rust url crate does', () => {
  const cases: Array<[string, string[], string]> = [
    ['https://example.com/', [], 'https://example.com'],
    ['HTTPS://Example.COM:443/', [], 'https://example.com'],
    ['https://example.com/?', [], 'https://example.com'],
    ['https://example.com/?a=b', [], 'https://example.com/?a=b'],
    ['https://example.com/path/', [], 'https://example.com/path/'],
    ['https://example.com/a?z=1&a=2', [], 'https://example.com/a?z=1&a=2'],
    ['https://example.com/a?x=a b&y=%7E~&k', [], 'https://example.com/a?x=a+b&y=%7E%7E&k='],
    ['https://example.com/a?x=1&X=2', ['x'], 'https://example.com/a?X=2'],
    ['https://example.com/a?x=1#frag', ['x'], 'https://example.com/a#frag'],
    ['https://example.com/#/', [], 'https://example.com/#'],
    [
      'https://bucket.s3.amazonaws.com/key?versionId=3&X-Amz-Signature=abc&X-Amz-Date=20250101',
      [...DEFAULT_FILTERED_QUERY_PARAMS],
      'https://bucket.s3.amazonaws.com/key?versionId=3',
    ],
  ];
  for (const [url, filtered, want] of cases) assert.equal(normalizeUrl(url, filtered), want, url);
});

test('filtered query params: undefined or empty filters nothing, as the upstream daemon does', () => {
  const url = 'https://example.com/f?ns=docker.io';
  assert.equal(taskIdFromUrl({ url }), sha256Hex(`${url}STANDARD`));
  assert.equal(taskIdFromUrl({ url, filteredQueryParams: [] }), sha256Hex(`${url}STANDARD`));
  assert.equal(
    taskIdFromUrl({ url, filteredQueryParams: DEFAULT_FILTERED_QUERY_PARAMS }),
    sha256Hex('https://example.com/fSTANDARD'),
  );
});

test('malformed URL is INVALID_ARGUMENT naming the url', () => {
  for (const url of ['', 'not-a-url', 'http://exa mple.com/', '://x']) {
    assert.throws(
      () => taskIdFromUrl({ url }),
      (e: unknown) => isCode('INVALID_ARGUMENT')(e) && (e as Error).message.includes(`"${url}"`),
    );
    assert.throws(() => selectTaskId(download({ url })), isCode('INVALID_ARGUMENT'));
  }
});
