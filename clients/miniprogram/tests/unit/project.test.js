// Checks of the project files that DevTools would otherwise only catch when someone opens it.
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '../..');
const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const json = (rel) => JSON.parse(read(rel));
const exists = (rel) => fs.existsSync(path.join(ROOT, rel));

/** What DevTools accepts as an appid: the tourist one, or a registered mini-program's. */
const APPID = /^(touristappid|wx[0-9a-f]{16})$/;

function sources(dir = ROOT, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'tests'].includes(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) sources(full, out);
    else if (/\.(js|wxml|json)$/.test(entry.name)) out.push(path.relative(ROOT, full));
  }
  return out;
}

test('project.config.json opens for anyone (tourist appid, or a real one as docs/wechat.md says)', () => {
  const project = json('project.config.json');
  expect(project.appid).toMatch(APPID);
  expect(project.compileType).toBe('miniprogram');
  // async/await in utils/ needs the enhanced compiler.
  expect(project.setting.enhance).toBe(true);
  const ignored = project.packOptions.ignore.map((i) => i.value);
  expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'tests', 'package.json']));
});

test('the appid check takes the tourist appid and real ones (wx + 16 hex), nothing else', () => {
  for (const ok of ['touristappid', 'wx0123456789abcdef', 'wxa1b2c3d4e5f60789']) expect(ok).toMatch(APPID);
  for (const bad of ['', 'wx123', 'wx0123456789abcdeg', 'wx0123456789ABCDEF0', 'appid']) expect(bad).not.toMatch(APPID);
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

test('no secret ships in the mini-program: no API key, no appsecret, no key-like string', () => {
  // Everything a phone downloads (tests, node_modules and package files are not packed).
  const shipped = sources().concat(['app.wxss']);
  for (const file of shipped) {
    const text = read(file);
    const found = {
      file,
      apiKeyHeader: /x-api-key/i.test(text),
      secretAssigned: /\b(secret|appsecret|api_?key|apikey|admin_?key)\b\s*[:=]/i.test(text),
      hex32: /\b[0-9a-f]{32,}\b/i.test(text),
      bearerLiteral: /Bearer\s+[A-Za-z0-9._-]{8,}/.test(text),
    };
    expect(found).toEqual({ file, apiKeyHeader: false, secretAssigned: false, hex32: false, bearerLiteral: false });
  }
  // The only credential sent is the login token, read from storage at run time.
  expect(read('utils/api.js')).toMatch(/Authorization: `Bearer \$\{token\}`/);
});

describe('dark mode', () => {
  const theme = json('theme.json');
  const configs = ['app.json', ...json('app.json').pages.map((p) => `${p}.json`)];

  test('app.json turns it on and names theme.json, with the same variables for light and dark', () => {
    const app = json('app.json');
    expect(app.darkmode).toBe(true);
    expect(app.themeLocation).toBe('theme.json');
    expect(Object.keys(theme).sort()).toEqual(['dark', 'light']);
    expect(Object.keys(theme.dark).sort()).toEqual(Object.keys(theme.light).sort());
    expect(theme.dark.navBgColor).not.toBe(theme.light.navBgColor);
  });

  test('every @variable of app.json and the page configs is in theme.json, and the colours use them', () => {
    let used = 0;
    for (const file of configs) {
      for (const [, name] of JSON.stringify(json(file)).matchAll(/"@(\w+)"/g)) {
        used += 1;
        expect({ file, name, light: name in theme.light, dark: name in theme.dark }).toEqual({ file, name, light: true, dark: true });
      }
      const config = file === 'app.json' ? json(file).window : json(file);
      for (const key of ['navigationBarBackgroundColor', 'navigationBarTextStyle', 'backgroundColor']) {
        if (key in config) expect({ file, key, value: config[key] }).toEqual({ file, key, value: expect.stringMatching(/^@/) });
      }
    }
    expect(used).toBeGreaterThan(3);
  });

  test('the styles set every colour variable in both themes and use no variable they do not set', () => {
    const app = read('app.wxss');
    const block = (name) => new RegExp(`\\.${name}\\s*\\{([^}]*)\\}`).exec(app)[1];
    const vars = (css) => [...css.matchAll(/(--[\w-]+)\s*:/g)].map((m) => m[1]).sort();
    const light = vars(block('theme-light'));
    expect(light.length).toBeGreaterThan(10);
    expect(vars(block('theme-dark'))).toEqual(light);
    const wxss = ['pages/index/index.wxss', 'pages/share/share.wxss', 'components/prediction-list/prediction-list.wxss', 'components/share-card/share-card.wxss', 'app.wxss'];
    for (const file of wxss) {
      for (const m of read(file).matchAll(/var\((--[\w-]+)/g)) expect({ file, v: light.includes(m[1]) }).toEqual({ file, v: true });
    }
    // The pages' own colours are variables: no hex colour left but the brand green.
    for (const file of ['pages/index/index.wxss', 'components/prediction-list/prediction-list.wxss']) {
      const hex = (read(file).match(/#[0-9a-fA-F]{3,6}\b/g) || []).filter((h) => h.toLowerCase() !== '#07c160');
      expect({ file, hex }).toEqual({ file, hex: [] });
    }
  });
});

test('every tappable element and every image has an aria-label', () => {
  const files = sources().filter((f) => f.endsWith('.wxml'));
  expect(files.length).toBeGreaterThanOrEqual(4);
  let checked = 0;
  for (const file of files) {
    const tags = read(file).match(/<(image|button|picker|[\w-]+)\b[^>]*>/g) || [];
    for (const tag of tags) {
      const name = /^<([\w-]+)/.exec(tag)[1];
      const tappable = /\b(bind|catch)(:)?(tap|change|agreeprivacyauthorization)\b/.test(tag);
      if (!tappable && !['image', 'button', 'picker'].includes(name)) continue;
      checked += 1;
      expect({ file, tag: tag.replace(/\s+/g, ' ').slice(0, 60), aria: /\baria-label="\{\{[^}]+\}\}"/.test(tag) }).toEqual({
        file,
        tag: tag.replace(/\s+/g, ' ').slice(0, 60),
        aria: true,
      });
    }
  }
  expect(checked).toBeGreaterThan(10);
});
