// Sends an identify and a track call with RudderStack's Node SDK at its default settings
// (gzip on), flushes, and exits 0 once the server has accepted the batch (1 otherwise).
// Usage: node send.js WRITE_KEY DATA_PLANE_URL ACCOUNT_ID
"use strict";
const Analytics = require("@rudderstack/rudder-sdk-node");

const [writeKey, dataPlaneUrl, account] = process.argv.slice(2);
const client = new Analytics(writeKey, { dataPlaneUrl, logLevel: "error" });
const context = { groupId: account };
client.identify({ userId: "n-1", traits: { email: "ada@acme.io", role: "admin" }, context });
client.track({ userId: "n-1", event: "Order Placed", properties: { amount: 120 }, context });
client.flush((error) => {
  if (error) {
    console.error(`flush failed: ${error.message}`);
    process.exit(1);
  }
  process.exit(0);
});
