// utils/share.js: what a share carries and how a landing page reads it back.
const { isSinglePage, readShared, shareQuery } = require('../../utils/share.js');

test('the query round-trips label, probability and model, encoded', () => {
  const query = shareQuery({ label: '虎斑猫 & co', probability: 0.8349, model: 'MobileNetV2' });
  expect(query).toBe(`label=${encodeURIComponent('虎斑猫 & co')}&p=0.835&model=MobileNetV2`);
  const parsed = Object.fromEntries(query.split('&').map((kv) => kv.split('=')));
  expect(readShared(parsed)).toEqual({ label: '虎斑猫 & co', probability: 0.835, percent: 84, model: 'MobileNetV2' });
});

test('a decoded query (as some base libraries pass it) reads the same', () => {
  expect(readShared({ label: 'tabby', p: '0.5', model: 'm' })).toEqual({ label: 'tabby', probability: 0.5, percent: 50, model: 'm' });
});

test.each([
  [undefined],
  [{}],
  [{ label: '', p: '0.5' }],
  [{ label: 'x', p: '-0.1' }],
  [{ label: 'x', p: '1.5' }],
  [{ label: 'x', p: 'NaN' }],
  [{ label: 'x'.repeat(81), p: '0.5' }],
  [{ label: 'x', p: '0.5', model: 'm'.repeat(65) }],
])('%j carries no result', (query) => {
  expect(readShared(query)).toBeNull();
});

test('scene 1154 is single-page mode, whichever options API the base library has', () => {
  expect(isSinglePage({ getEnterOptionsSync: () => ({ scene: 1154 }) })).toBe(true);
  expect(isSinglePage({ getLaunchOptionsSync: () => ({ scene: 1154 }) })).toBe(true);
  expect(isSinglePage({ getEnterOptionsSync: () => ({ scene: 1007 }) })).toBe(false);
  expect(isSinglePage({})).toBe(false);
  expect(isSinglePage({ getEnterOptionsSync: () => { throw new Error('old'); } })).toBe(false);
});
