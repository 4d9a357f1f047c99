// Checks of the project files that DevTools would otherwise only catch when someone opens it.
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '../..');
const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const json = (rel) => JSON.parse(read(rel));
const exists = (rel) => fs.existsSync(path.join(ROOT, rel));

function sources(dir = ROOT, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'tests'].includes(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) sources(full, out);
    else if (/\.(js|wxml|json)$/.test(entry.name)) out.push(path.relative(ROOT, full));
  }
  return out;
}

test('project.config.json opens for anyone (tourist appid, mini-program)', () => {
  const project = json('project.config.json');
  expect(project.appid).toBe('touristappid');
  expect(project.compileType).toBe('miniprogram');
  // async/await in utils/ needs the enhanced compiler.
  expect(project.setting.enhance).toBe(true);
  const ignored = project.packOptions.ignore.map((i) => i.value);
  expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'tests', 'package.json']));
});

test('the local DevTools settings stay out of the project', () => {
  const gitignore = fs.readFileSync(path.join(ROOT, '../../.gitignore'), 'utf8');
  expect(gitignore).toMatch(/project\.private\.config\.json/);
});

test('app files and sitemap exist', () => {
  for (const f of ['app.js', 'app.json', 'app.wxss', 'sitemap.json', 'config.js']) expect(exists(f)).toBe(true);
  expect(json('app.json').sitemapLocation).toBe('sitemap.json');
  expect(json('sitemap.json').rules.length).toBeGreaterThan(0);
});

test('every page and component has its four files', () => {
  const app = json('app.json');
  const components = [];
  for (const page of app.pages) {
    for (const ext of ['.js', '.json', '.wxml', '.wxss']) expect(exists(page + ext)).toBe(true);
    for (const target of Object.values(json(`${page}.json`).usingComponents || {})) {
      components.push(target.replace(/^\//, ''));
    }
  }
  expect(components.length).toBeGreaterThan(0);
  for (const c of components) {
    for (const ext of ['.js', '.json', '.wxml', '.wxss']) expect(exists(c + ext)).toBe(true);
    expect(json(`${c}.json`).component).toBe(true);
  }
});

test('upload timeout stays within WeChat limits', () => {
  const app = json('app.json');
  expect(app.networkTimeout.uploadFile).toBeLessThanOrEqual(60000);
});

test('no deprecated wx.chooseImage, and uploadFile never sets Content-Type', () => {
  for (const file of sources()) {
    const text = read(file);
    expect({ file, chooseImage: /chooseImage\s*\(/.test(text) }).toEqual({ file, chooseImage: false });
  }
  expect(read('utils/api.js')).not.toMatch(/['"]content-type['"]\s*:/i);
});

test('the server address lives only in config.js', () => {
  for (const file of sources()) {
    if (file === 'config.js' || file.endsWith('.json')) continue;
    expect({ file, url: /https?:\/\//.test(read(file)) }).toEqual({ file, url: false });
  }
});

test('pages stay thin: no wx.request or wx.uploadFile outside utils/', () => {
  for (const file of sources()) {
    if (file.startsWith('utils/') || !file.endsWith('.js')) continue;
    expect({ file, io: /wx\.(request|uploadFile)\s*\(/.test(read(file)) }).toEqual({ file, io: false });
  }
});

describe('release-ready configuration', () => {
  const { execFileSync } = require('child_process');
  const config = require('../../config.js');
  const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' });

  test.each(['trial', 'release'])('the %s URL is HTTPS on a domain (no IP, no localhost)', (env) => {
    for (const urls of [config.TRACKED_BASE_URLS, config.BASE_URLS]) {
      const url = new URL(urls[env]);
      expect(url.protocol).toBe('https:');
      expect(url.hostname).not.toMatch(/^(localhost|\d+\.\d+\.\d+\.\d+|\[.*\])$/);
      expect(url.hostname).toContain('.');
    }
  });

  test('a local override sets the develop URL only', () => {
    const local = { developUrl: 'http://192.0.2.7:8000', trial: 'http://evil', release: 'http://evil' };
    const urls = config.applyLocalOverride(config.TRACKED_BASE_URLS, local);
    expect(urls.develop).toBe('http://192.0.2.7:8000');
    expect(urls.trial).toBe(config.TRACKED_BASE_URLS.trial);
    expect(urls.release).toBe(config.TRACKED_BASE_URLS.release);
    expect(config.applyLocalOverride(config.TRACKED_BASE_URLS, null)).toEqual(config.TRACKED_BASE_URLS);
    expect(config.applyLocalOverride(config.TRACKED_BASE_URLS, { developUrl: ' ' })).toEqual(config.TRACKED_BASE_URLS);
  });

  test('config.local.js is git-ignored and never tracked', () => {
    expect(git('check-ignore', '-v', 'config.local.js')).toMatch(/config\.local\.js/);
    expect(git('ls-files', '--', 'config.local.js').trim()).toBe('');
  });

  test('no tracked file of the mini-program holds a LAN address', () => {
    const lan = /\b(192\.168\.\d+\.\d+|10\.\d+\.\d+\.\d+|172\.(1[6-9]|2\d|3[01])\.\d+\.\d+)\b/;
    const tracked = git('ls-files', '--', '.').split('\n').filter((f) => f && !f.startsWith('tests/') && !f.endsWith('package-lock.json'));
    expect(tracked.length).toBeGreaterThan(10);
    for (const file of tracked) {
      if (!fs.existsSync(path.join(ROOT, file))) continue;
      expect({ file, lan: lan.test(read(file)) }).toEqual({ file, lan: false });
    }
  });

  test('the upload timeout and the shrink size are sane', () => {
    expect(config.UPLOAD_TIMEOUT_MS).toBeLessThanOrEqual(60000);
    expect(config.MAX_UPLOAD_SIDE).toBeLessThanOrEqual(1024);
    expect(config.MAX_UPLOAD_SIDE).toBeGreaterThanOrEqual(224);
  });
});

test('no privacy prompt at launch: the page asks at first use', () => {
  expect(read('app.js')).not.toMatch(/requirePrivacyAuthorize\s*\(/);
  expect(read('pages/index/index.js')).toMatch(/wx\.onNeedPrivacyAuthorization\(/);
  expect(read('pages/index/index.wxml')).toMatch(/open-type="agreePrivacyAuthorization"/);
});
