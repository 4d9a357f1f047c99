// Three suites, one `npm test`: unit (utils/ with a fake wx), render (miniprogram-simulate),
// contract (utils/ against a real kerasserve server over HTTP).
module.exports = {
  reporters: ['default', '<rootDir>/tests/support/summary-reporter.js'],
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/tests/unit/**/*.test.js'],
    },
    {
      displayName: 'render',
      testEnvironment: 'jsdom',
      testMatch: ['<rootDir>/tests/render/**/*.test.js'],
    },
    {
      displayName: 'contract',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/tests/contract/**/*.test.js'],
    },
  ],
};
