/**
 * Loading pages and components into miniprogram-simulate.
 *
 * simulate has no `getApp`/`getCurrentPages`: stubbed here. It compiles WXML with WeChat's own
 * `wcc` binary (x86-64) where it can, and its pure-JS compiler elsewhere.
 */
const path = require('path');
const simulate = require('miniprogram-simulate');

const ROOT = path.join(__dirname, '../..');

global.getApp = global.getApp || (() => ({ globalData: {} }));
global.getCurrentPages = global.getCurrentPages || (() => []);

const COMPILER = process.env.SIMULATE_COMPILER || (process.arch === 'x64' ? 'official' : 'simulate');

/** Loads `rel` (e.g. 'pages/index/index') once per test file; returns its component id. */
function load(rel) {
  return simulate.load(path.join(ROOT, rel), { rootPath: ROOT, compiler: COMPILER });
}

/** Renders and attaches a loaded component, as a page would be. */
function mount(id, properties) {
  const comp = simulate.render(id, properties);
  comp.attach(document.createElement('parent-wrapper'));
  return comp;
}

/** Text of the rendered DOM with whitespace collapsed. */
function textOf(comp) {
  return comp.dom.textContent.replace(/\s+/g, ' ').trim();
}

/**
 * The WXML attributes of the element with `id`, from the rendered tree (built-in components
 * such as <image> and <button> keep them there, not in the DOM).
 */
function attrsOf(comp, id) {
  const walk = (node) => {
    if (!node || typeof node !== 'object') return null;
    const attrs = Object.fromEntries((node.attrs || []).map((a) => [a.name, a.value]));
    if (attrs.id === id) return attrs;
    for (const child of node.children || []) {
      const found = walk(child);
      if (found) return found;
    }
    return null;
  };
  return walk(comp.toJSON());
}

/** Lets pending promises and setImmediate callbacks run, then the view update. */
async function settle() {
  for (let i = 0; i < 5; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await simulate.sleep(0);
}

module.exports = { simulate, load, mount, textOf, attrsOf, settle, ROOT, COMPILER };
