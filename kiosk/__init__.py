"""The numbering kiosk (取号机) program and its pages."""
