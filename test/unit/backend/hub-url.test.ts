// Hub URLs as upstream's backends build them (the expected URLs are upstream's own test vectors in
// hugging_face.rs, model_scope.rs and opencsg.rs), the listings' JSON, and the refusals of bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HUGGING_FACE,
  MODEL_SCOPE,
  OPEN_CSG,
  checkRevision,
  downloadUrl,
  listingUrl,
  parseHubUrl,
} from '../../../src/backend/hub-url.js';

test('hub URLs name the repository type, the repository and the file', () => {
  assert.deepEqual(parseHubUrl('hf://deepseek-ai/DeepSeek-OCR/model.safetensors'), {
    spec: HUGGING_FACE,
    type: 'models',
    repository: 'deepseek-ai/DeepSeek-OCR',
    file: 'model.safetensors',
  });
  const dataset = parseHubUrl('hf://datasets/huggingface/squad/');
  assert.equal(dataset.type, 'datasets');
  assert.equal(dataset.file, undefined);
  assert.equal(parseHubUrl('hf://models/a/b/c/d.bin').file, 'c/d.bin');
  assert.equal(parseHubUrl('modelscope://spaces/a/b').type, 'models', 'ModelScope has no spaces: an owner');
  assert.equal(parseHubUrl('opencsg://skills/owner/repo/SKILL.md').type, 'skills');
});

test('file and listing URLs are upstream test vectors', () => {
  const cases: Array<[string, string, string | undefined, string, string]> = [
    [
      'hf://deepseek-ai/DeepSeek-OCR/model.safetensors',
      'main',
      undefined,
      'https://huggingface.co/deepseek-ai/DeepSeek-OCR/resolve/main/model.safetensors',
      'https://huggingface.co/api/models/deepseek-ai/DeepSeek-OCR?revision=main',
    ],
    [
      'hf://datasets/huggingface/squad/train.json',
      'v1.0',
      undefined,
      'https://huggingface.co/datasets/huggingface/squad/resolve/v1.0/train.json',
      'https://huggingface.co/api/datasets/huggingface/squad?revision=v1.0',
    ],
    [
      'hf://spaces/huggingface/transformers-demo/app.py',
      'v1.0',
      'https://hf-mirror.com',
      'https://hf-mirror.com/spaces/huggingface/transformers-demo/resolve/v1.0/app.py',
      'https://hf-mirror.com/api/spaces/huggingface/transformers-demo?revision=v1.0',
    ],
    [
      'modelscope://datasets/owner/my-dataset/train.json',
      'master',
      undefined,
      'https://modelscope.cn/datasets/owner/my-dataset/resolve/master/train.json',
      'https://modelscope.cn/api/v1/datasets/owner/my-dataset/repo/files?Revision=master&Recursive=true',
    ],
    [
      'modelscope://deepseek-ai/DeepSeek-R1/config.json',
      'master',
      undefined,
      'https://modelscope.cn/models/deepseek-ai/DeepSeek-R1/resolve/master/config.json',
      'https://modelscope.cn/api/v1/models/deepseek-ai/DeepSeek-R1/repo/files?Revision=master&Recursive=true',
    ],
    [
      'opencsg://OpenCSG/csg-wukong-1B/model.safetensors',
      'main',
      undefined,
      'https://hub.opencsg.com/csg/OpenCSG/csg-wukong-1B/resolve/main/model.safetensors',
      'https://hub.opencsg.com/csg/api/models/OpenCSG/csg-wukong-1B/revision/main?blobs=true',
    ],
    [
      'opencsg://datasets/OpenCSG/chinese-fineweb-edu/train.json',
      'main',
      'https://hub-mirror.example.com/csg/',
      'https://hub-mirror.example.com/csg/datasets/OpenCSG/chinese-fineweb-edu/resolve/main/train.json',
      'https://hub-mirror.example.com/csg/api/datasets/OpenCSG/chinese-fineweb-edu/revision/main',
    ],
  ];
  for (const [url, revision, base, file, listing] of cases) {
    const hub = parseHubUrl(url);
    assert.equal(downloadUrl(hub, hub.file!, revision, base).href, file, url);
    assert.equal(listingUrl(hub, revision, base).href, listing, url);
  }
});

test('listings: LFS sizes win, directories are left out, a ModelScope error code is an error', () => {
  assert.deepEqual(
    HUGGING_FACE.listingFiles({
      siblings: [
        { rfilename: 'model.safetensors', size: 134, lfs: { size: 5000, pointerSize: 134 } },
        { rfilename: 'config.json', size: 12 },
        { rfilename: 'README.md' },
      ],
    }),
    [
      { path: 'model.safetensors', size: 5000 },
      { path: 'config.json', size: 12 },
      { path: 'README.md', size: 0 },
    ],
  );
  assert.deepEqual(
    OPEN_CSG.listingFiles({
      siblings: [
        { rfilename: 'd', type: 'tree' },
        { rfilename: 'd/f', type: 'blob', size: 3 },
      ],
    }),
    [{ path: 'd/f', size: 3 }],
  );
  assert.deepEqual(
    MODEL_SCOPE.listingFiles({
      Code: 200,
      Data: {
        Files: [
          { Path: 'd', Type: 'tree' },
          { Path: 'd/f', Type: 'blob', Size: 7 },
        ],
      },
    }),
    [{ path: 'd/f', size: 7 }],
  );
  assert.throws(
    () => MODEL_SCOPE.listingFiles({ Code: 10010205001, Message: 'repo not exists' }),
    /ModelScope API error: code=10010205001, message=repo not exists/,
  );
  assert.deepEqual(HUGGING_FACE.listingFiles('not an object'), []);
});

test('bad hub URLs, revisions and base URLs are one clear line', () => {
  assert.throws(
    () => parseHubUrl('hf://owner'),
    /^DfError: invalid hf URL hf:\/\/owner: expected hf:\/\/\[datasets\/\|spaces\/\]owner\/repo\[\/path\]$/,
  );
  assert.throws(() => parseHubUrl('hf://datasets/owner'), /invalid hf URL/);
  assert.throws(() => parseHubUrl('hf://o/r/a?x=1'), /invalid hf URL/);
  assert.throws(() => parseHubUrl('hf://o/r/%2e%2e/x'), /"%2e%2e" is not a plain name/);
  assert.throws(() => parseHubUrl('hf://o/r/a%2Fb'), /is not a plain name/);
  assert.throws(() => parseHubUrl('s3://o/r'), /is not a model hub URL/);
  for (const bad of ['', 'main?x', 'a b', '../x', 'refs//x', 'v1#x']) {
    assert.throws(() => checkRevision(MODEL_SCOPE, bad), /^DfError: invalid --ms-revision /, bad);
  }
  for (const ok of ['main', 'v1.0', 'refs/pr/1', 'a1b2c3d4e5']) checkRevision(HUGGING_FACE, ok);
  const hub = parseHubUrl('opencsg://o/r/f');
  assert.throws(
    () => downloadUrl(hub, 'f', 'main', 'ftp://x/'),
    /invalid --csg-base-url "ftp:\/\/x\/": expected an http\(s\) URL/,
  );
  assert.throws(() => listingUrl(hub, 'main', 'not a url'), /invalid --csg-base-url "not a url"/);
});
