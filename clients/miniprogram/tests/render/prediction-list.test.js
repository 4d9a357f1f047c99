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
