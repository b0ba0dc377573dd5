/** The SDK's only reads of the environment: where the server is and which key to use. */
export const trackerEnv = {
  url: () => process.env['AFT_URL'] ?? 'http://127.0.0.1:3000',
  apiKey: () => process.env['AFT_API_KEY'],
};
