// Content as it would run under openxp's content launch: TinCanJS reads the
// Rustici launch parameters (endpoint, auth, actor, activity_id, registration)
// from the launch URL, sends a statement, reads it back, keeps some state, and
// tries (and must fail) to write a statement for another actor.
// Usage: node launch_client.mjs LAUNCH_URL   -> prints one JSON object; exit 0 if all went as expected.
import TinCan from "tincanjs";

const launchUrl = process.argv[2];
if (!launchUrl) {
  console.error("usage: node launch_client.mjs LAUNCH_URL");
  process.exit(2);
}

const tincan = new TinCan({ url: launchUrl });
const lrs = tincan.recordStores[0];

const promise = (run) => new Promise((resolve) => run(resolve));
const status = (xhr) => (xhr && typeof xhr.status === "number" ? xhr.status : null);

const report = {
  endpoint: lrs ? lrs.endpoint : null,
  actor: tincan.actor ? tincan.actor.asVersion("1.0.0") : null,
  activity: tincan.activity ? tincan.activity.id : null,
  registration: tincan.registration,
};

const verb = { id: "http://adlnet.gov/expapi/verbs/experienced", display: { "en-US": "experienced" } };

// 1. A statement built from the launch parameters alone (actor, activity, registration);
// TinCanJS gives it an id and PUTs it (204).
const sent = await promise((done) =>
  tincan.sendStatement({ verb }, (results, statement) => done({ results, statement })),
);
report.sendStatus = status(sent.results[0].xhr);
report.sendError = sent.results[0].err;
report.statementId = sent.statement.id;

// 2. Read it back by id, and in a query for this actor (and registration).
const got = await promise((done) => tincan.getStatement(sent.statement.id, (err, st) => done({ err, st })));
report.readBackOk = !got.err && Boolean(got.st) && got.st.id === sent.statement.id;
const queried = await promise((done) =>
  lrs.queryStatements({
    params: { agent: tincan.actor, registration: tincan.registration },
    callback: (err, result) => done({ err, result }),
  }),
);
report.queryOk = !queried.err && Boolean(queried.result) && queried.result.statements.some((s) => s.id === sent.statement.id);

// 3. State for this actor, activity and registration.
const saved = await promise((done) =>
  tincan.setState("bookmark", "page-7", { contentType: "text/plain", callback: (err, xhr) => done({ err, xhr }) }),
);
report.setStateStatus = saved.err === null ? 204 : status(saved.xhr);
const state = await promise((done) => tincan.getState("bookmark", { callback: (err, st) => done({ err, st }) }));
report.stateValue = !state.err && state.st ? state.st.contents : null;

// 4. A statement for someone else: the launch credential must refuse it.
const other = await promise((done) =>
  tincan.sendStatement(
    { actor: { mbox: "mailto:someone-else@example.com", objectType: "Agent" }, verb },
    (results) => done(results[0]),
  ),
);
report.otherActorStatus = status(other.xhr);

console.log(JSON.stringify(report));
const ok =
  report.sendStatus === 204 &&
  report.readBackOk &&
  report.queryOk &&
  report.setStateStatus === 204 &&
  report.stateValue === "page-7" &&
  report.otherActorStatus === 403;
process.exit(ok ? 0 : 1);
