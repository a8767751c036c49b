import { Router } from 'express';

// The passkey buttons' script, served from Tessera (the CSP allows no inline script): a button
// with data-passkey="create" or "get" reads its WebAuthn options (JSON, made by the server with its
// challenge) from data-passkey-options, asks navigator.credentials, and submits the answer as JSON
// in the hidden #passkey-answer field of the form data-form names. Plain ES5, no library.

export const PASSKEY_SCRIPT_PATH = '/assets/passkeys.js';

export const PASSKEY_SCRIPT = `(function () {
  function toBytes(text) {
    var base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (base64.length % 4) base64 += '=';
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }
  function toText(buffer) {
    if (!buffer) return undefined;
    var bytes = new Uint8Array(buffer);
    var binary = '';
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function withIds(list) {
    return (list || []).map(function (item) { return { id: toBytes(item.id), type: item.type || 'public-key', transports: item.transports }; });
  }
  function show(message) {
    var box = document.getElementById('passkey-error');
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }
  function answer(credential, mode) {
    var response = credential.response;
    var common = { id: credential.id, rawId: toText(credential.rawId), type: credential.type, clientExtensionResults: credential.getClientExtensionResults(), authenticatorAttachment: credential.authenticatorAttachment || undefined };
    if (mode === 'create') {
      common.response = { clientDataJSON: toText(response.clientDataJSON), attestationObject: toText(response.attestationObject), transports: response.getTransports ? response.getTransports() : [] };
    } else {
      common.response = { clientDataJSON: toText(response.clientDataJSON), authenticatorData: toText(response.authenticatorData), signature: toText(response.signature), userHandle: toText(response.userHandle) };
    }
    return JSON.stringify(common);
  }
  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-passkey]');
    if (!button) return;
    var mode = button.getAttribute('data-passkey');
    var form = document.getElementById(button.getAttribute('data-form'));
    var options = JSON.parse(button.getAttribute('data-passkey-options'));
    if (!window.PublicKeyCredential || !navigator.credentials) { show('This browser cannot use passkeys.'); return; }
    if (form.reportValidity && !form.reportValidity()) return;
    options.challenge = toBytes(options.challenge);
    var request;
    if (mode === 'create') {
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = withIds(options.excludeCredentials);
      request = navigator.credentials.create({ publicKey: options });
    } else {
      options.allowCredentials = withIds(options.allowCredentials);
      request = navigator.credentials.get({ publicKey: options });
    }
    button.disabled = true;
    request.then(function (credential) {
      document.getElementById('passkey-answer').value = answer(credential, mode);
      form.submit();
    }, function (error) {
      button.disabled = false;
      show(error && error.name === 'NotAllowedError' ? 'The passkey was not used (cancelled or timed out). Try again.' : 'The passkey did not work: ' + (error && error.message ? error.message : error));
    });
  });
})();
`;

/** Serves the script (cached an hour, like /assets/copy.js). */
export function createPasskeyScriptRoute(): Router {
  const router = Router();
  router.get(PASSKEY_SCRIPT_PATH, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').type('application/javascript').send(PASSKEY_SCRIPT);
  });
  return router;
}
