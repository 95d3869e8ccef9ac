// The page's entry: tabs, the API key dialog, and starting the chat and the dashboard.
import { onKeyNeeded, storedKey, forgetKey } from './api.js';
import { setupChat, loadModels } from './chat.js';
import { startDashboard } from './dashboard.js';

const $ = (id) => document.getElementById(id);

function showView(name) {
  for (const tab of document.querySelectorAll('.tabs [role=tab]')) {
    const selected = tab.dataset.view === name;
    tab.setAttribute('aria-selected', String(selected));
    $(`view-${tab.dataset.view}`).hidden = !selected;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
}

// Resolves with the key the user types; the dialog stays until one is given.
function askForKey(reason) {
  return new Promise((resolve) => {
    const dialog = $('key-dialog');
    $('key-reason').textContent = reason;
    $('key-input').value = '';
    const form = $('key-form');
    const done = (e) => {
      e.preventDefault();
      const key = $('key-input').value.trim();
      if (!key) return;
      form.removeEventListener('submit', done);
      dialog.close();
      $('change-key').hidden = false;
      resolve(key);
    };
    form.addEventListener('submit', done);
    dialog.showModal();
    $('key-input').focus();
  });
}

function showStatus(status, error) {
  const pill = $('server-state');
  pill.textContent = error ? 'unreachable' : status;
  pill.title = error || `server status: ${status}`;
  pill.className = `pill ${error ? 'bad' : status === 'ok' ? 'good' : 'warn'}`;
}

async function loadModelsUntilReady() {
  for (;;) {
    try {
      const models = await loadModels();
      if (models.length) return;
    } catch { /* still loading or unreachable: the status pill says which */ }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

onKeyNeeded(askForKey);
// Escape would close the key dialog with no key while calls wait for one: it stays open.
$('key-dialog').addEventListener('cancel', (e) => e.preventDefault());
setupChat();
for (const tab of document.querySelectorAll('.tabs [role=tab]')) {
  tab.addEventListener('click', () => showView(tab.dataset.view));
}
showView(location.hash === '#dashboard' ? 'dashboard' : 'chat');
$('change-key').hidden = !storedKey();
$('change-key').addEventListener('click', () => {
  forgetKey();
  location.reload();
});
startDashboard(showStatus);
loadModelsUntilReady();
