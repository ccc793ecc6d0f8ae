// An AU as a cmi5 course would ship it, run against openxp's cmi5 launch: Rustici's cmi5.js
// (npm @rusticisoftware/cmi5) reads the launch URL, POSTs the fetch URL, reads LMS.LaunchData
// and the learner preferences, sends initialized, completed, passed and terminated; then a
// second copy of the AU started from the same URL must be refused its token (cmi5 8.2.3.1).
// Usage: node cmi5_client.mjs LAUNCH_URL   -> prints one JSON object; exit 0 if all went as expected.

// cmi5.js is a browser bundle whose wrapper names the global object ``self``.
globalThis.self = globalThis;
const Cmi5 = (await import("@rusticisoftware/cmi5")).default;

const launchUrl = process.argv[2];
if (!launchUrl) {
  console.error("usage: node cmi5_client.mjs LAUNCH_URL");
  process.exit(2);
}

const report = { steps: [] };
const step = async (name, run) => {
  try {
    await run();
    report.steps.push(name);
  } catch (error) {
    report.error = `${name}: ${error}`;
    throw error;
  }
};

try {
  let au;
  await step("construct", () => {
    au = new Cmi5(launchUrl);
  });
  await step("start", () => au.start());
  report.launchMode = au.getLaunchMode();
  report.moveOn = au.getMoveOn();
  report.masteryScore = au.getMasteryScore();
  report.sessionId = au.getSessionId();
  report.returnURL = au.getReturnURL();
  await step("completed", () => au.completed());
  await step("passed", () => au.passed({ scaled: 0.9 }));
  await step("terminate", () => au.terminate());
  try {
    await new Cmi5(launchUrl).start();
    report.secondStart = "started";
  } catch (error) {
    report.secondStart = String(error);
  }
  console.log(JSON.stringify(report));
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify(report));
  process.exit(1);
}
