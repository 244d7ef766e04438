"""Pure account views: order records, fills, balances and user-data payloads from engine events."""
