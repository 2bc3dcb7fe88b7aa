'use strict';
// A minimal Utilbot bot for Node.js (bindings/node): connect, identify, report servers, print
// events, close. Run: node bot.js wss://gateway.utilbot.co/ YOUR_KEY [CA_FILE]
const { Client } = require('../../bindings/node');

const [url, key, ca] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: node bot.js URL KEY [CA_FILE]');
  process.exit(2);
}

const client = new Client(key, { url, ca });
client.on('ready', () => {
  console.log('ready: identified with the gateway');
  client.send('send_servers', { guilds: 42, guildMembers: 1337, cachedGuildMembers: 512 });
});
client.on('GLOBAL_GUILD_COUNT', async (data) => {
  console.log('event GLOBAL_GUILD_COUNT:', JSON.stringify(data));
  await client.close(1000); // resolves once CLOSED
  process.exitCode = client.state === 'CLOSED' ? 0 : 1;
});
client.on('error', (error) => console.log(`error ${error.code}: ${error.message}`));
client.on('close', (event) => {
  console.log(`closed with ${event.code}${event.reconnect ? ', reconnecting' : ''}`);
});
client.on('fatal', (event) => {
  console.log(`fatal: ${event.message}`);
  process.exitCode = 1;
});
client.connect();
