"""What answers requests: the routing table, handlers, WebSocket hub, auth, OpenAPI, metrics."""
