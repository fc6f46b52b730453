// The live connection, opened as the page starts: the daemon makes and sends the first snapshot
// while the browser is still loading the rest of the dashboard. main.js takes it over.

import { LiveConnection, socketUrl } from "./connection.js";

export const connection = new LiveConnection(socketUrl(location.href));
connection.start();
