"""The web client and the admin console: static pages and ES modules served from the package,
speaking only the public REST API and the live protocol (PRODUCT.md "In the browser")."""
