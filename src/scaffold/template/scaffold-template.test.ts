// The `scaffold-template` adapter against the conformance suite, with a real HTTP back office on loopback
// as its counterpart. When your adapter speaks another protocol, replace HttpBackOffice by a counterpart
// for it (see ConformanceCounterpart in src/testkit/conformance.ts) and keep the suite call as it is.
import { describeAdapterConformance } from '../../testkit/conformance';
import { HttpBackOffice } from '../../testkit/http-back-office';
import adapter from './index';

const TOKEN = 'scaffold-template-test-token';
process.env.SCAFFOLD_TEMPLATE_TEST_TOKEN = TOKEN;
const backOffice = new HttpBackOffice({ authorize: (request) => request.headers.authorization === `Bearer ${TOKEN}`, secrets: [TOKEN] });

describeAdapterConformance({
  definition: adapter,
  config: () => ({ url: `${backOffice.url}/eingang`, token: { env: 'SCAFFOLD_TEMPLATE_TEST_TOKEN' } }),
  counterpart: backOffice,
});

// Add tests of your own below: what your back office needs on the wire, its error answers, its references.
