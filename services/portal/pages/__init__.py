"""The portal's pages, one module per role, and the rendering they share."""
