// Placeholder for `npm start` until the node issue lands (it will start a 4-validator devnet).
console.log(
  "VitalStream: `npm start` will start a local 4-validator devnet once the node package lands.\n" +
    "Available today: `npm test`, `npm run sim`, `npm run bench:consensus` (see README.md).",
);
