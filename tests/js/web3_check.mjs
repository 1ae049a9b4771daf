// Drives the localnet with @solana/web3.js, whose response schemas reject any shape that
// differs from the real RPC. Usage: node web3_check.mjs RPC_URL WS_URL FAUCET_KEYPAIR_JSON
// Prints one JSON object with what was seen; exits non-zero on the first failure.
import { readFileSync } from "node:fs";
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  PublicKey,
  SystemProgram,
  Transaction,
  sendAndConfirmTransaction,
} from "@solana/web3.js";

const [rpcUrl, wsUrl, faucetPath] = process.argv.slice(2);
const faucet = Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(faucetPath, "utf8"))));
const connection = new Connection(rpcUrl, { wsEndpoint: wsUrl, commitment: "confirmed" });
const seen = {};

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const payer = Keypair.generate();
const target = Keypair.generate();

// Websocket subscriptions, opened before the changes they should report.
const accountChange = new Promise((resolve) => {
  const id = connection.onAccountChange(target.publicKey, (info, context) => {
    connection.removeAccountChangeListener(id);
    resolve({ lamports: info.lamports, slot: context.slot });
  }, { commitment: "processed" });
});
const logs = new Promise((resolve) => {
  const id = connection.onLogs(target.publicKey, (entry, context) => {
    connection.removeOnLogsListener(id);
    resolve({ signature: entry.signature, logs: entry.logs, slot: context.slot });
  }, "confirmed");
});
const programChange = new Promise((resolve) => {
  const id = connection.onProgramAccountChange(SystemProgram.programId, (keyed) => {
    if (keyed.accountId.equals(target.publicKey)) {
      connection.removeProgramAccountChangeListener(id);
      resolve({ pubkey: keyed.accountId.toBase58(), lamports: keyed.accountInfo.lamports });
    }
  }, { commitment: "confirmed" });
});
const slotChange = new Promise((resolve) => {
  const id = connection.onSlotChange((info) => {
    connection.removeSlotChangeListener(id);
    resolve(info);
  });
});
const rootChange = new Promise((resolve) => {
  const id = connection.onRootChange((root) => {
    connection.removeRootChangeListener(id);
    resolve(root);
  });
});

// requestAirdrop + confirmTransaction (signatureSubscribe and getSignatureStatuses).
const airdrop = await connection.requestAirdrop(payer.publicKey, 10 * LAMPORTS_PER_SOL);
const latest = await connection.getLatestBlockhash();
await connection.confirmTransaction({ signature: airdrop, ...latest }, "confirmed");
check((await connection.getBalance(payer.publicKey)) === 10 * LAMPORTS_PER_SOL, "airdrop balance");

const tx = new Transaction().add(
  SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: target.publicKey, lamports: LAMPORTS_PER_SOL }),
);
const signature = await sendAndConfirmTransaction(connection, tx, [payer]);
seen.accountChange = await within(30000, accountChange, "onAccountChange");
check(seen.accountChange.lamports === LAMPORTS_PER_SOL, "account notification lamports");
seen.logs = await within(30000, logs, "onLogs");
check(seen.logs.signature === signature, "logs notification signature");
seen.programChange = await within(30000, programChange, "onProgramAccountChange");
seen.slotChange = await within(30000, slotChange, "onSlotChange");
seen.root = await within(30000, rootChange, "onRootChange");

// HTTP methods, each parsed by web3.js's schema of the real response.
const status = (await connection.getSignatureStatus(signature)).value;
const block = await connection.getBlock(status.slot, { maxSupportedTransactionVersion: 0 });
check(block.transactions.some((t) => t.transaction.signatures[0] === signature), "getBlock has the transfer");
const parsedBlock = await connection.getParsedBlock(status.slot, { maxSupportedTransactionVersion: 0 });
check(parsedBlock.blockhash === block.blockhash, "getParsedBlock");
const history = await connection.getSignaturesForAddress(target.publicKey);
check(history.length === 1 && history[0].signature === signature, "getSignaturesForAddress");
const parsedTx = await connection.getParsedTransaction(signature, { maxSupportedTransactionVersion: 0 });
check(parsedTx.transaction.message.instructions[0].parsed.type === "transfer", "getParsedTransaction");
const stake = await connection.getParsedProgramAccounts(new PublicKey("Stake11111111111111111111111111111111111111"));
check(stake[0].account.data.parsed.type === "delegated", "jsonParsed stake account");

const slot = await connection.getSlot();
const results = {
  blocks: (await connection.getBlocks(Math.max(0, slot - 5), slot)).length,
  blockTime: await connection.getBlockTime(status.slot),
  blockHeight: await connection.getBlockHeight(),
  blockProduction: (await connection.getBlockProduction()).value.range,
  clusterNodes: (await connection.getClusterNodes()).length,
  epochInfo: (await connection.getEpochInfo()).epoch,
  epochSchedule: (await connection.getEpochSchedule()).slotsPerEpoch,
  firstAvailableBlock: await connection.getFirstAvailableBlock(),
  genesisHash: await connection.getGenesisHash(),
  inflationGovernor: (await connection.getInflationGovernor()).initial,
  inflationRate: (await connection.getInflationRate()).total,
  largestAccounts: (await connection.getLargestAccounts()).value.length,
  leaderSchedule: Object.keys(await connection.getLeaderSchedule()).length,
  minimumLedgerSlot: await connection.getMinimumLedgerSlot(),
  performanceSamples: (await connection.getRecentPerformanceSamples(5)).length,
  prioritizationFees: (await connection.getRecentPrioritizationFees()).length,
  slotLeader: await connection.getSlotLeader(),
  slotLeaders: (await connection.getSlotLeaders(slot, 3)).length,
  stakeMinimumDelegation: (await connection.getStakeMinimumDelegation()).value,
  supply: (await connection.getSupply()).value.total > 0,
  transactionCount: await connection.getTransactionCount(),
  version: (await connection.getVersion())["solana-core"],
  voteAccounts: (await connection.getVoteAccounts()).current.length,
  blockhashValid: (await connection.isBlockhashValid(latest.blockhash)).value,
  feeForMessage: (await connection.getFeeForMessage(tx.compileMessage())).value,
};
check(results.voteAccounts === 1 && results.clusterNodes === 1, "one node");
check(results.feeForMessage === 5000, "fee for one signature");
seen.results = results;
console.log(JSON.stringify(seen));
process.exit(0);
