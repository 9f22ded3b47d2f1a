import './zod-config';
import './styles/base.css';
import { createPinia } from 'pinia';
import { createApp } from 'vue';
import { connectToHost } from './api';
import App from './App.vue';
import { setHostConnection } from './stores/api';
import { useConnectionsStore } from './stores/connections';
import { useDomainsStore } from './stores/domains';
import { useHostStore } from './stores/host';
import { useJobsStore } from './stores/jobs';
import { useQuitStore } from './stores/quit';
import { useStatsStore } from './stores/stats';

const host = connectToHost();
setHostConnection(host);
const app = createApp(App);
app.use(createPinia());
// The stores subscribe to host events when created; create them before the first connection.
useHostStore();
useConnectionsStore();
useDomainsStore();
useJobsStore();
useQuitStore();
useStatsStore();
app.mount('#app');
host.start();
