"""Rx operators for watching cameras: one operator per module, plus inference backends."""
