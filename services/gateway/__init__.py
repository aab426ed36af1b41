"""The HTTP gateway: predictions from the in-memory champion, retrains through the queues."""
