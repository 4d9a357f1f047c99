const { load, mount, settle, textOf } = require('../support/simulate.js');

const id = load('components/prediction-list/prediction-list');

test('renders one row per prediction, with label, percent and a bar of that width', async () => {
  const comp = mount(id, {
    predictions: [
      { index: 281, label: 'tabby', percent: 83 },
      { index: 285, label: 'Egyptian cat', percent: 10.5 },
    ],
  });
  await settle();
  const rows = comp.querySelectorAll('.row');
  expect(rows).toHaveLength(2);
  const cells = (cls) => comp.querySelectorAll(cls).map((c) => textOf(c));
  expect(cells('.label')).toEqual(['tabby', 'Egyptian cat']);
  expect(cells('.percent')).toEqual(['83%', '10.5%']);
  const bars = comp.querySelectorAll('.bar');
  expect(bars[0].dom.getAttribute('style')).toMatch(/width:\s*83%/);
  expect(bars[1].dom.getAttribute('style')).toMatch(/width:\s*10\.5%/);
});

test('renders nothing for no predictions, and updates when they arrive', async () => {
  const comp = mount(id);
  await settle();
  expect(comp.querySelectorAll('.row')).toHaveLength(0);
  comp.setData({ predictions: [{ index: 1, label: 'goldfish', percent: 100 }] });
  await settle();
  expect(textOf(comp.querySelector('.label'))).toBe('goldfish');
  expect(textOf(comp.querySelector('.percent'))).toBe('100%');
});

test('multi-label rows: a verdict per label in the given words, a 50% mark, no shares of a whole', async () => {
  const comp = mount(id, {
    multi: true,
    likelyText: 'likely',
    unlikelyText: 'unlikely',
    predictions: [
      { index: 1, label: 'dog', percent: 91, likely: true },
      { index: 2, label: 'car', percent: 12, likely: false },
    ],
  });
  await settle();
  const cells = (cls) => comp.querySelectorAll(cls).map((c) => textOf(c));
  expect(cells('.verdict')).toEqual(['likely', 'unlikely']);
  expect(comp.querySelectorAll('.midline')).toHaveLength(2);
  expect(comp.querySelectorAll('.bar')[1].dom.className).toMatch(/weak/);
});

test('Latin labels get the capitalising class; Chinese labels do not', async () => {
  const latin = mount(id, { latin: true, predictions: [{ index: 1, label: 'tabby', percent: 50 }] });
  const chinese = mount(id, { latin: false, predictions: [{ index: 1, label: '虎斑猫', percent: 50 }] });
  await settle();
  expect(latin.querySelector('.list').dom.className).toMatch(/latin/);
  expect(chinese.querySelector('.list').dom.className).not.toMatch(/latin/);
  expect(latin.querySelectorAll('.verdict')).toHaveLength(0);
});
