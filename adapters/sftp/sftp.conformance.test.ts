// The sftp adapter against the conformance suite; its counterpart is a real OpenSSH server on loopback
// (needs the Debian package openssh-server) with a drop folder, as a back office runs it. How it fails,
// goes down, holds, and why it has no 'reject': dropFolderCounterpart in test-counterpart.ts.
import { describeAdapterConformance } from '../../src/testkit/conformance';
import sftpAdapter from './index';
import { dropFolderCounterpart, OpenSshServer } from './test-counterpart';

const server = new OpenSshServer();

describeAdapterConformance({
  definition: sftpAdapter,
  config: () => server.adapterConfig(),
  counterpart: dropFolderCounterpart(server),
});
